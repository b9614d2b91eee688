package vfs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// The transfer benchmarks move 64 MiB through pkg/sftp's client and the
// session over an in-memory pipe, so they measure the server's and the
// client's work without SSH encryption. Allocations and cpu-ms/op (the
// process's user and system CPU time, steadier than the wall clock on a
// busy machine) count both sides.
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

func benchEnv(b *testing.B, opts []sftp.ClientOption, envOpts ...option) *env {
	e := newEnv(b, envOpts...)
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
			defer reportCPU(b, time.Millisecond, "cpu-ms/op")()
			for b.Loop() {
				benchDownload(b, e.client, "big.bin", benchSize)
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
			defer reportCPU(b, time.Millisecond, "cpu-ms/op")()
			for b.Loop() {
				benchUpload(b, e.client, data)
			}
		})
	}
}

// reportCPU starts counting the process's CPU time; the function it returns
// reports it per operation, in units.
func reportCPU(b *testing.B, unit time.Duration, name string) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N)/float64(unit), name)
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRequests measures the server's work for one request, from
// reading the packet to handing the reply to the channel: a channel sends
// the same request b.N times, pipelined, and drops the replies.
func BenchmarkRequests(b *testing.B) {
	e := newEnv(b)
	mustWrite(b, filepath.Join(e.home(), "f.bin"), strings.Repeat("x", 4096))
	mustWrite(b, filepath.Join(e.folder(folderA), "f.bin"), "x")
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Project", Rights: vfs.List | vfs.Download})
	start := append(packet(typeInit, u32(3)), packet(typeOpen, u32(1), str("f.bin"), u32(0x1|0x2), u32(0))...)
	h := str("1") // the channel's first handle
	for _, c := range []struct {
		name string
		req  []byte
	}{
		{"read-1KiB", packet(typeRead, u32(2), h, u64(0), u32(1024))},
		{"write-1KiB", packet(typeWrite, u32(2), h, u64(0), str(strings.Repeat("y", 1024)))},
		{"fstat", packet(8, u32(2), h)},
		{"stat", packet(typeStat, u32(2), str("f.bin"))},
		{"stat-shared", packet(typeStat, u32(2), str("/Projects Shared With Me/Project/f.bin"))},
		{"realpath", packet(typeRealpath, u32(2), str("."))},
		{"unsupported", packet(99, u32(2))},
	} {
		b.Run(c.name, func(b *testing.B) {
			ch := &requestStream{rest: start, req: c.req, left: b.N}
			b.ReportAllocs()
			defer reportCPU(b, time.Nanosecond, "cpu-ns/op")()
			b.ResetTimer()
			if err := e.session.Serve(ch); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			// The version, the handle, a reply for each request.
			if got := ch.replies.Load(); got != int64(b.N)+2 {
				b.Fatalf("%d replies to %d requests", got, b.N+2)
			}
		})
	}
}

// requestStream is a channel whose client sends rest, then req left times,
// then EOF; it counts the replies.
type requestStream struct {
	rest    []byte
	req     []byte
	left    int
	replies atomic.Int64
}

func (s *requestStream) Read(p []byte) (int, error) {
	if len(s.rest) == 0 {
		if s.left == 0 {
			return 0, io.EOF
		}
		s.rest, s.left = s.req, s.left-1
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

func (s *requestStream) Write(p []byte) (int, error) {
	s.replies.Add(1)
	return len(p), nil
}

func (s *requestStream) Close() error { return nil }

// slowQuota is a memQuota whose every call takes delay, as a round trip to
// the database does (BenchmarkStorageMeter in tenant/domain measures the
// real one: a reservation and its settlement).
type slowQuota struct {
	*memQuota
	delay time.Duration
}

func (q slowQuota) Reserve(ctx context.Context, tree string, need, want int64) (int64, error) {
	time.Sleep(q.delay)
	return q.memQuota.Reserve(ctx, tree, need, want)
}

func (q slowQuota) Settle(ctx context.Context, tree string, reserved, delta int64) error {
	time.Sleep(q.delay)
	return q.memQuota.Settle(ctx, tree, reserved, delta)
}

// BenchmarkUploadQuota is BenchmarkUpload's 255 KiB client without quotas
// and with a quota whose calls take SKIFF_BENCH_QUOTA_DELAY each (8ms
// unless set: what BenchmarkStorageMeter measured per call on the loaded
// 2-core VM), in the same run, so the ratio is the quota's cost.
//
//	go test -run XXX -bench UploadQuota -benchtime 20x -count 5 ./sftp/vfs
func BenchmarkUploadQuota(b *testing.B) {
	delay := benchQuotaDelay(b)
	for _, quota := range []bool{false, true} {
		name := "none"
		var opts []option
		if quota {
			name = "quota"
			opts = append(opts, withQuota(slowQuota{newMemQuota(1 << 40), delay}))
		}
		b.Run(name, func(b *testing.B) {
			e := benchEnv(b, []sftp.ClientOption{sftp.MaxPacketUnchecked(255 * 1024)}, opts...)
			data := bytes.Repeat([]byte("skiff"), benchSize/5+1)[:benchSize]
			b.SetBytes(benchSize)
			defer reportCPU(b, time.Millisecond, "cpu-ms/op")()
			for b.Loop() {
				benchUpload(b, e.client, data)
			}
		})
	}
}

// benchQuotaDelay is SKIFF_BENCH_QUOTA_DELAY, 8ms when unset.
func benchQuotaDelay(b *testing.B) time.Duration {
	v := os.Getenv("SKIFF_BENCH_QUOTA_DELAY")
	if v == "" {
		return 8 * time.Millisecond
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkUploadQuotaInterleaved is BenchmarkUploadQuota with the two
// sessions taking turns, one upload each per iteration (who goes first
// alternates). It reports each side's median throughput and the median
// over the iterations of the ratio of their two upload times (quota/none):
// on a machine shared with other work, load that comes and goes slows the
// two uploads of an iteration alike, so that ratio holds up where
// BenchmarkUploadQuota's consecutive runs do not.
//
//	go test -run XXX -bench UploadQuotaInterleaved -benchtime 40x -count 3 ./sftp/vfs
func BenchmarkUploadQuotaInterleaved(b *testing.B) {
	opts := []sftp.ClientOption{sftp.MaxPacketUnchecked(255 * 1024)}
	sides := []*env{benchEnv(b, opts), benchEnv(b, opts, withQuota(slowQuota{newMemQuota(1 << 40), benchQuotaDelay(b)}))}
	data := bytes.Repeat([]byte("skiff"), benchSize/5+1)[:benchSize]
	times := make([][]time.Duration, 2)
	b.SetBytes(2 * benchSize)
	i := 0
	for b.Loop() {
		for k := range 2 {
			side := (i + k) % 2
			start := time.Now()
			benchUpload(b, sides[side].client, data)
			times[side] = append(times[side], time.Since(start))
		}
		i++
	}
	ratios := make([]time.Duration, len(times[0])) // per iteration, in millionths
	for i := range ratios {
		ratios[i] = times[1][i] * 1e6 / times[0][i]
	}
	none, quota := median(times[0]), median(times[1])
	b.ReportMetric(benchSize/none.Seconds()/1e6, "none-MB/s")
	b.ReportMetric(benchSize/quota.Seconds()/1e6, "quota-MB/s")
	b.ReportMetric(float64(median(ratios))/1e6, "quota/none")
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// benchUpload uploads data to up.bin through c, failing b on any error.
func benchUpload(b *testing.B, c *sftp.Client, data []byte) {
	f, err := c.Create("up.bin")
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

// benchDownload reads name through c to the end, failing b unless it was
// size bytes.
func benchDownload(b *testing.B, c *sftp.Client, name string, size int64) {
	f, err := c.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	n, err := f.WriteTo(io.Discard)
	f.Close()
	if err != nil || n != size {
		b.Fatalf("downloaded %d bytes: %v", n, err)
	}
}

// BenchmarkMetrics runs BenchmarkUpload's and BenchmarkDownload's 255 KiB
// client against two sessions, one with Metrics off and one with them on,
// alternating transfer by transfer so that both see the same machine, and
// reports each one's CPU time per transfer and their ratio: what counting
// costs the data path.
//
//	go test -run XXX -bench Metrics -benchtime 20x -count 5 ./sftp/vfs
func BenchmarkMetrics(b *testing.B) {
	data := bytes.Repeat([]byte("skiff"), benchSize/5+1)[:benchSize]
	m := vfs.NewMetrics(prometheus.NewRegistry(), nil)
	for _, dir := range []string{"upload", "download"} {
		b.Run(dir, func(b *testing.B) {
			client := []sftp.ClientOption{sftp.MaxPacketUnchecked(255 * 1024)}
			envs := [2]*env{benchEnv(b, client), benchEnv(b, client, func(c *vfs.Config) { c.Metrics = m })}
			for _, e := range envs {
				mustWrite(b, filepath.Join(e.home(), "big.bin"), string(data))
			}
			var cpu [2]time.Duration
			b.SetBytes(benchSize)
			for i := 0; b.Loop(); i++ {
				for k := range envs {
					k := (k + i) % 2 // who goes first alternates too
					start := cpuTime(b)
					if dir == "upload" {
						benchUpload(b, envs[k].client, data)
					} else {
						benchDownload(b, envs[k].client, "big.bin", benchSize)
					}
					cpu[k] += cpuTime(b) - start
				}
			}
			b.ReportMetric(float64(cpu[0])/float64(b.N)/1e6, "off-cpu-ms/op")
			b.ReportMetric(float64(cpu[1])/float64(b.N)/1e6, "on-cpu-ms/op")
			b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "on/off")
		})
	}
}
