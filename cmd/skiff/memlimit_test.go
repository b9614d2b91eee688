package main

import (
	"bytes"
	"log/slog"
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
	if got := containerMemory(slog.New(slog.NewTextHandler(&logs, nil)), bad); got != 0 || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("serve with an unreadable limit: %d, logged %q; want no limit and a warning", got, logs.String())
	}
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
	run := func(env string, container, s3Memory, pg int64) (int64, string) {
		t.Setenv("GOMEMLIMIT", env)
		debug.SetMemoryLimit(prev)
		var logs bytes.Buffer
		applyMemoryLimit(slog.New(slog.NewTextHandler(&logs, nil)), container, s3Memory, pg, replies)
		return debug.SetMemoryLimit(-1), logs.String()
	}
	if got, logs := run("", 2<<30, 512*mib, privatePostgresMemory); got != 2<<30-512*mib-privatePostgresMemory-(2<<30)/10 ||
		!strings.Contains(logs, "go_memory_limit=") || strings.Contains(logs, "level=WARN") {
		t.Errorf("2 GiB container: limit %d, logged %q; want a limit and no warning", got, logs)
	}
	if got, logs := run("", 0, 512*mib, 0); got != prev || logs != "" {
		t.Errorf("no container: limit %d (was %d), logged %q; want nothing changed", got, prev, logs)
	}
	if got, logs := run("3GiB", 2<<30, 0, 0); got != prev || !strings.Contains(logs, "go_memory_limit=3GiB") {
		t.Errorf("GOMEMLIMIT set: limit %d (was %d), logged %q; want it left to GOMEMLIMIT", got, prev, logs)
	}
	if got, logs := run("", 256*mib, 256*mib, 0); got != prev || !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "least=") {
		t.Errorf("a container no larger than the transfers' memory: limit %d, logged %q; want none set, and a warning", got, logs)
	}
	// 1 GiB on S3: 512 for transfers, 410 for Go, room for the replies' 256.
	if _, logs := run("", 1<<30, 512*mib, 0); strings.Contains(logs, "level=WARN") {
		t.Errorf("1 GiB container on S3: logged %q; want no warning", logs)
	}
	// 512 MiB on S3: 256 for transfers, 205 for Go, under the replies' 256.
	if got, logs := run("", 512*mib, 256*mib, 0); got != 512*mib-256*mib-(512*mib)/10 || !strings.Contains(logs, "--sftp-reply-memory leaves") {
		t.Errorf("512 MiB container on S3: limit %d, logged %q; want a limit, and a warning about the replies' budget", got, logs)
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
	startDemo(t, func(c *ServeCmd) {
		c.Storage.URL = srv.URL("container")
		c.Metrics.Addr = metricsAddr
		c.cgroupRoot = fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("1610612736\n"),
		}
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
