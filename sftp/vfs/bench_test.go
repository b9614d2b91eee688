package vfs_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"
)

// The transfer benchmarks move 64 MiB through pkg/sftp's client and the
// session over an in-memory pipe, so they measure the server's and the
// client's work without SSH encryption. Allocations count both sides.
//
//	go test -run XXX -bench . -benchtime 5x ./sftp/vfs
const benchSize = 64 << 20

var benchClients = []struct {
	name string
	opts []sftp.ClientOption
}{
	{"32KiB", nil},
	{"255KiB", []sftp.ClientOption{sftp.MaxPacketUnchecked(255 * 1024)}},
}

func benchEnv(b *testing.B, opts []sftp.ClientOption) *env {
	e := newEnv(b)
	e.client.Close()
	e.conn.Close()
	<-e.served
	e.connect(opts...)
	return e
}

func BenchmarkDownload(b *testing.B) {
	for _, bc := range benchClients {
		b.Run(bc.name, func(b *testing.B) {
			e := benchEnv(b, bc.opts)
			name := filepath.Join(e.home(), "big.bin")
			if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(name, bytes.Repeat([]byte("skiff"), benchSize/5+1)[:benchSize], 0o640); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				f, err := e.client.Open("big.bin")
				if err != nil {
					b.Fatal(err)
				}
				n, err := f.WriteTo(io.Discard)
				f.Close()
				if err != nil || n != benchSize {
					b.Fatalf("downloaded %d bytes: %v", n, err)
				}
			}
		})
	}
}

func BenchmarkUpload(b *testing.B) {
	for _, bc := range benchClients {
		b.Run(bc.name, func(b *testing.B) {
			e := benchEnv(b, bc.opts)
			data := bytes.Repeat([]byte("skiff"), benchSize/5+1)[:benchSize]
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				f, err := e.client.Create("up.bin")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
