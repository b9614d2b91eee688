package vfs_test

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// The checksum and server-side copy benchmarks. The file is
// SKIFF_BENCH_COPY_MIB MiB (256 by default; docs/BENCHMARKS.md records
// 1024), written once and read from the page cache.
//
//	go test -run XXX -bench 'HashFile|CopyData' -benchtime 3x ./sftp/vfs
func benchFileSize(b *testing.B) int64 {
	mib := int64(256)
	if v := os.Getenv("SKIFF_BENCH_COPY_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("SKIFF_BENCH_COPY_MIB=%q", v)
		}
		mib = n
	}
	return mib << 20
}

// writeBenchFile writes size bytes of varied content to name.
func writeBenchFile(b *testing.B, name string, size int64) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i*7 + i>>8)
	}
	for n := int64(0); n < size; n += int64(len(block)) {
		block[0]++
		if _, err := f.Write(block[:min(int64(len(block)), size-n)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHashFile is what one checksum command (or check-file request)
// costs the server: Session.HashFile streams the file through the hash on
// one goroutine. "memory" is the hash alone over a buffer, the ceiling.
// MB/cpu-s is the bytes hashed per second of the process's CPU time: the
// speed per core, which a busy machine does not blur as it does MB/s.
func BenchmarkHashFile(b *testing.B) {
	for _, alg := range []struct {
		name string
		new  func() hash.Hash
	}{{"md5", md5.New}, {"sha1", sha1.New}, {"sha256", sha256.New}, {"sha512", sha512.New}} {
		b.Run(alg.name+"/file", func(b *testing.B) {
			e := newEnv(b)
			size := benchFileSize(b)
			writeBenchFile(b, filepath.Join(e.home(), "big.bin"), size)
			b.SetBytes(size)
			defer reportCPU(b, time.Millisecond, "cpu-ms/op")()
			defer reportCPUThroughput(b, size)()
			for b.Loop() {
				if err := e.session.HashFile(context.Background(), "big.bin", alg.new()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg.name+"/memory", func(b *testing.B) {
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(len(buf)))
			defer reportCPUThroughput(b, int64(len(buf)))()
			h := alg.new()
			for b.Loop() {
				h.Write(buf)
			}
		})
	}
}

// reportCPUThroughput starts counting the process's CPU time; the function
// it returns reports MB (10^6 bytes) handled per CPU second, size bytes per
// operation.
func reportCPUThroughput(b *testing.B, size int64) func() {
	start := cpuTime(b)
	return func() {
		if cpu := cpuTime(b) - start; cpu > 0 {
			b.ReportMetric(float64(size)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
		}
	}
}

// BenchmarkCopyData compares a server-side copy (copy-data, as OpenSSH
// sftp's cp sends it: open, copy, close, which fsyncs the new file) with
// reading the same file once through SFTP (a 255 KiB pkg/sftp client over
// an in-memory pipe, no SSH).
func BenchmarkCopyData(b *testing.B) {
	b.Run("copy", func(b *testing.B) {
		e := newEnv(b)
		size := benchFileSize(b)
		writeBenchFile(b, filepath.Join(e.home(), "big.bin"), size)
		e.client.Close()
		e.conn.Close()
		<-e.served
		c := newBenchRaw(b, e)
		src := c.open("big.bin", fxfRead)
		b.SetBytes(size)
		defer reportCPU(b, time.Millisecond, "cpu-ms/op")()
		defer reportCPUThroughput(b, size)()
		for b.Loop() {
			dst := c.open("copy.bin", fxfWrite|fxfCreat|fxfTrunc)
			c.expectOK(packet(typeExtended, u32(c.next()), str("copy-data"), str(src), u64(0), u64(0), str(dst), u64(0)))
			c.expectOK(packet(typeClose, u32(c.next()), str(dst)))
		}
		b.StopTimer()
		if fi, err := os.Stat(filepath.Join(e.home(), "copy.bin")); err != nil || fi.Size() != size {
			b.Fatalf("copy: %v %v", fi, err)
		}
		e.served = nil // the raw channel's Serve is not waited for
	})
	b.Run("read", func(b *testing.B) {
		e := benchEnv(b, []sftp.ClientOption{sftp.MaxPacketUnchecked(255 * 1024)})
		size := benchFileSize(b)
		writeBenchFile(b, filepath.Join(e.home(), "big.bin"), size)
		b.SetBytes(size)
		defer reportCPU(b, time.Millisecond, "cpu-ms/op")()
		defer reportCPUThroughput(b, size)()
		for b.Loop() {
			benchDownload(b, e.client, "big.bin", size)
		}
	})
}

// benchRaw is a raw SFTP channel for benchmarks.
type benchRaw struct {
	b    *testing.B
	conn net.Conn
	id   uint32
}

func newBenchRaw(b *testing.B, e *env) *benchRaw {
	server, client := net.Pipe()
	go e.session.Serve(server)
	b.Cleanup(func() { client.Close() })
	c := &benchRaw{b: b, conn: client}
	c.send(packet(typeInit, u32(3)))
	c.recv()
	return c
}

func (c *benchRaw) next() uint32 { c.id++; return c.id }

func (c *benchRaw) send(p []byte) {
	if _, err := c.conn.Write(p); err != nil {
		c.b.Fatal(err)
	}
}

func (c *benchRaw) recv() (byte, []byte) {
	var l [4]byte
	if _, err := io.ReadFull(c.conn, l[:]); err != nil {
		c.b.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(c.conn, body); err != nil {
		c.b.Fatal(err)
	}
	return body[0], body[1:]
}

func (c *benchRaw) open(p string, pflags uint32) string {
	c.send(packet(typeOpen, u32(c.next()), str(p), u32(pflags), u32(0)))
	typ, b := c.recv()
	if typ != typeHandle {
		c.b.Fatalf("open %s: reply of type %d", p, typ)
	}
	return string(b[8:])
}

func (c *benchRaw) expectOK(p []byte) {
	c.send(p)
	typ, b := c.recv()
	if typ != typeStatus || binary.BigEndian.Uint32(b[4:]) != codeOK {
		c.b.Fatalf("reply %d %x, want OK", typ, b)
	}
}
