package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/skiffhq/skiff/storage/s3"
)

const mib = 1 << 20

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestCgroupMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		root fstest.MapFS
		want int64
	}{
		{"no /proc (not Linux)", fstest.MapFS{}, 0},
		{"cgroup v2, no limit", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0},
		{"cgroup v2, the container's own namespace", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("268435456\n"),
		}, 256 * mib},
		{"cgroup v2, the pod's limit under the container's", fstest.MapFS{
			"proc/self/cgroup":                          file("0::/kubepods/pod1/c1\n"),
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": file("max\n"),
			"sys/fs/cgroup/kubepods/pod1/memory.max":    file("536870912\n"),
			"sys/fs/cgroup/kubepods/memory.max":         file("1073741824\n"),
		}, 512 * mib},
		{"cgroup v2, a path the mount does not show", fstest.MapFS{
			"proc/self/cgroup":         file("0::/docker/abc\n"),
			"sys/fs/cgroup/memory.max": file("100000000\n"),
		}, 100000000},
		{"cgroup v1, unlimited", fstest.MapFS{
			"proc/self/cgroup": file("5:cpu,cpuacct:/\n4:memory:/docker/abc\n0::/\n"),
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": file("9223372036854771712\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            file("9223372036854771712\n"),
		}, 0},
		{"cgroup v1, a parent's limit the mount does not show", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/docker/abc\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
			"sys/fs/cgroup/memory/memory.stat":           file("cache 0\nrss 0\nhierarchical_memory_limit 314572800\nhierarchical_memsw_limit 9223372036854771712\n"),
		}, 300 * mib},
		{"cgroup v1, its own limit under the hierarchy's", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("209715200\n"),
			"sys/fs/cgroup/memory/memory.stat":           file("hierarchical_memory_limit 9223372036854771712\n"),
		}, 200 * mib},
		{"cgroup v1, a limit (hybrid: v2 has no memory controller)", fstest.MapFS{
			"proc/self/cgroup": file("4:memory:/docker/abc\n0::/\n"),
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": file("209715200\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            file("9223372036854771712\n"),
		}, 200 * mib},
	} {
		got, err := cgroupMemoryLimit(c.root)
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	bad := fstest.MapFS{
		"proc/self/cgroup":         file("0::/\n"),
		"sys/fs/cgroup/memory.max": file("lots\n"),
	}
	if got, err := cgroupMemoryLimit(bad); err == nil || !strings.Contains(err.Error(), "memory.max") {
		t.Errorf("an unreadable limit: %d, %v; want an error naming the file", got, err)
	}
	var logs bytes.Buffer
	if got := containerMemory(slog.New(slog.NewTextHandler(&logs, nil)), cgroupDir(t, bad)); got != 0 || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("serve with an unreadable limit: %d, logged %q; want no limit and a warning", got, logs.String())
	}
}

// cgroupDir writes files into a directory for --cgroup-root.
func cgroupDir(t *testing.T, files fstest.MapFS) string {
	t.Helper()
	dir := t.TempDir()
	for name, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestGoMemoryLimitUnderTheContainer(t *testing.T) {
	// A tenth of the container for the program, and what is outside Go's
	// heap, set aside.
	if got, ok := goMemoryLimit(1<<30, 512*mib); !ok || got != 1<<30-512*mib-(1<<30)/10 {
		t.Errorf("1 GiB with 512 MiB outside: %d, %v", got, ok)
	}
	if _, ok := goMemoryLimit(128*mib, 64*mib); ok {
		t.Error("128 MiB with 64 MiB outside leaves under 64 MiB: want no limit")
	}

	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const replies = 256 * mib // --sftp-reply-memory's default
	// On S3 with the storage URL's memory left to its default: half the
	// container, up to 1 GiB.
	defaults, err := s3.ParseURL("s3://b/p")
	if err != nil {
		t.Fatal(err)
	}
	s3Default := defaults.MemoryIn
	run := func(env string, container int64, n nodeMemory) (int64, string) {
		t.Setenv("GOMEMLIMIT", env)
		debug.SetMemoryLimit(prev)
		var logs bytes.Buffer
		n.replies = replies
		applyMemoryLimit(slog.New(slog.NewTextHandler(&logs, nil)), container, n)
		return debug.SetMemoryLimit(-1), logs.String()
	}
	fixed := func(b int64) func(int64) int64 { return func(int64) int64 { return b } }
	if got, logs := run("", 2<<30, nodeMemory{s3In: fixed(512 * mib), pg: privatePostgresMemory}); got != 2<<30-512*mib-privatePostgresMemory-(2<<30)/10 ||
		!strings.Contains(logs, fmt.Sprintf("go_memory_limit=%d", got)) || strings.Contains(logs, "level=WARN") {
		t.Errorf("2 GiB container: limit %d, logged %q; want a limit and no warning", got, logs)
	}
	if got, logs := run("", 0, nodeMemory{s3In: fixed(512 * mib)}); got != prev || logs != "" {
		t.Errorf("no container: limit %d (was %d), logged %q; want nothing changed", got, prev, logs)
	}
	if got, logs := run("3GiB", 2<<30, nodeMemory{}); got != prev || !strings.Contains(logs, "gomemlimit=3GiB") {
		t.Errorf("GOMEMLIMIT set: limit %d (was %d), logged %q; want it left to GOMEMLIMIT", got, prev, logs)
	}
	// 1 GiB on S3: 512 MiB for transfers, 410 for Go, room for the replies.
	if got, logs := run("", 1<<30, nodeMemory{s3In: s3Default}); got != 1<<30-512*mib-(1<<30)/10 || strings.Contains(logs, "level=WARN") {
		t.Errorf("1 GiB container on S3: limit %d, logged %q; want a limit and no warning", got, logs)
	}
	// 512 MiB on S3: 256 for transfers, 205 for Go, under the replies' 256.
	if got, logs := run("", 512*mib, nodeMemory{s3In: s3Default}); got != 512*mib-256*mib-(512*mib)/10 || !strings.Contains(logs, "--sftp-reply-memory leaves") {
		t.Errorf("512 MiB container on S3: limit %d, logged %q; want a limit, and a warning about the replies' budget", got, logs)
	}

	// Too small: no limit, and the least container that would do, where
	// the transfers' default memory grows with the container too.
	for _, c := range []struct {
		name      string
		container int64
		n         nodeMemory
		least     int64
	}{
		// 64 MiB for Go and 128 for PostgreSQL in the 0.4 of the
		// container that half for transfers and a tenth leave.
		{"S3 default memory, private PostgreSQL", 100 * mib, nodeMemory{s3In: s3Default, pg: privatePostgresMemory}, 480 * mib},
		{"S3 default memory", 100 * mib, nodeMemory{s3In: s3Default}, 160 * mib},
		// (64 + 256) / 0.9 = 355.6 MiB, rounded up.
		{"S3 memory given", 256 * mib, nodeMemory{s3In: fixed(256 * mib)}, 356 * mib},
		{"local disk, private PostgreSQL", 128 * mib, nodeMemory{pg: privatePostgresMemory}, 214 * mib},
	} {
		got, logs := run("", c.container, c.n)
		if got != prev || !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, fmt.Sprintf("least=%d", c.least)) {
			t.Errorf("%s in %d MiB: limit %d (was %d), logged %q; want none set, and least=%d", c.name, c.container/mib, got, prev, logs, c.least)
		}
		if _, ok := goMemoryLimit(c.least, c.n.outside(c.least)); !ok {
			t.Errorf("%s: the least container said, %d, is still too small", c.name, c.least)
		}
		if _, ok := goMemoryLimit(c.least-mib, c.n.outside(c.least-mib)); ok {
			t.Errorf("%s: a MiB less than the least container said, %d, would do", c.name, c.least)
		}
		if wantURL := c.n.s3In != nil; strings.Contains(logs, "storage URL") != wantURL {
			t.Errorf("%s: logged %q; the storage URL should be named only on S3", c.name, logs)
		}
	}
}

// In a container of 1.5 GiB, serve on S3 takes half of it for transfers
// (the storage URL says no memory) and gives the Go runtime a soft limit
// under the rest, the private PostgreSQL's share set aside.
func TestServeInAContainer(t *testing.T) {
	srv := startS3ForServe(t)
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
	metricsAddr := freeAddr(t)
	root := cgroupDir(t, fstest.MapFS{
		"proc/self/cgroup":         file("0::/\n"),
		"sys/fs/cgroup/memory.max": file("1610612736\n"),
	})
	startServe(t, newDataDir(t), func(c *ServeCmd) {
		c.Storage.URL = srv.URL("container")
		c.Metrics.Addr = metricsAddr
		c.CgroupRoot = root
	})
	mfs := scrape(t, metricsAddr)
	if got := value(mfs, "skiff_s3_transfer_memory_limit_bytes"); got != 768*mib {
		t.Errorf("S3 transfers' memory %v, want half the container (768 MiB)", got)
	}
	// A limit the test process's own heap, which the race detector
	// swells, stays under.
	want := int64(1536*mib - 768*mib - privatePostgresMemory - 1536*mib/10)
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Errorf("Go memory limit %d, want %d", got, want)
	}
	if got := value(mfs, "go_gc_gomemlimit_bytes"); got != float64(want) {
		t.Errorf("go_gc_gomemlimit_bytes on /metrics: %v, want %d", got, want)
	}
	if s3.DefaultMemory <= 768*mib {
		t.Fatal("the default memory is no larger than half the container: the test shows nothing")
	}
}
