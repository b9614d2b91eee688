package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	slashpath "path"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/skiffhq/skiff/storage/s3"
)

// A node in a container (a cgroup with a memory limit) that uses more than
// the limit is killed by the kernel, with every session on it. Go's
// collector does not know the limit: it lets the heap grow to twice what is
// live. So serve reads the limit at start and, unless GOMEMLIMIT is set,
// gives the Go runtime a soft limit under it, and the S3 transfers' memory
// budget defaults to half of it (s3.ParseURLWithin).

// minGoMemory is the least soft limit serve sets: under it the collector
// would run almost without pause on an ordinary node's own heap.
const minGoMemory = 64 << 20

// unlimited and above mean no limit: cgroup v1 says so with the largest
// page-aligned int64, far more than any machine has.
const unlimited = 1 << 62

// cgroupMemoryLimit is the memory limit of the cgroup this process runs
// in: the lowest of its own and its ancestors', read from /proc/self/cgroup
// and /sys/fs/cgroup in root (cgroup v2, or v1's memory controller); 0 when
// there is none, or no /proc to read it from.
func cgroupMemoryLimit(root fs.FS) (int64, error) {
	self, err := fs.ReadFile(root, "proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // not Linux, or no /proc
	}
	if err != nil {
		return 0, err
	}
	var v2, v1 string
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			v1 = parts[2]
		}
	}
	// v1's memory controller, where there is one, holds the limit (a
	// hybrid machine's v2 hierarchy has no memory controller).
	if v1 != "" {
		own, err := lowestLimit(root, "sys/fs/cgroup/memory", v1, "memory.limit_in_bytes")
		if err != nil {
			return 0, err
		}
		// The kernel's own figure covers parents the mount does not
		// show (a container without a cgroup namespace sees its own
		// cgroup as the root).
		all, err := hierarchicalLimit(root, "sys/fs/cgroup/memory", v1)
		if err != nil {
			return 0, err
		}
		return lowestOf(own, all), nil
	}
	if v2 != "" {
		return lowestLimit(root, "sys/fs/cgroup", v2, "memory.max")
	}
	return 0, nil
}

// lowestLimit reads file in dir/group and in each of its ancestors up to
// dir, and returns the lowest limit among them (0: none). A container that
// sees its own cgroup as the mount's root has no dir/group: the files that
// exist are the ones read.
func lowestLimit(root fs.FS, dir, group, file string) (int64, error) {
	var lowest int64
	for g := slashpath.Clean("/" + group); ; g = slashpath.Dir(g) {
		b, err := fs.ReadFile(root, slashpath.Join(dir, g, file))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return 0, err
		default:
			v := strings.TrimSpace(string(b))
			if v != "max" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s: %w", slashpath.Join(dir, g, file), err)
				}
				lowest = lowestOf(lowest, n)
			}
		}
		if g == "/" {
			return lowest, nil
		}
	}
}

// hierarchicalLimit reads cgroup v1's hierarchical_memory_limit (the lowest
// limit of the cgroup and all its ancestors) from the memory.stat of the
// deepest of dir/group and its ancestors that the mount shows; 0: none.
func hierarchicalLimit(root fs.FS, dir, group string) (int64, error) {
	for g := slashpath.Clean("/" + group); ; g = slashpath.Dir(g) {
		name := slashpath.Join(dir, g, "memory.stat")
		b, err := fs.ReadFile(root, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if g == "/" {
				return 0, nil
			}
			continue
		case err != nil:
			return 0, err
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "hierarchical_memory_limit "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s: %w", name, err)
				}
				return lowestOf(0, n), nil
			}
		}
		return 0, nil
	}
}

// lowestOf is the lower of two limits, where 0 and unlimited and above are
// none.
func lowestOf(a, b int64) int64 {
	if b <= 0 || b >= unlimited {
		return a
	}
	if a <= 0 || a >= unlimited || b < a {
		return b
	}
	return a
}

// goMemoryLimit is the soft limit for the Go runtime in a container of
// container bytes, where outside bytes are spoken for outside Go's heap:
// what is left after a tenth for the program and the kernel's accounting.
// ok is false where that leaves under minGoMemory.
func goMemoryLimit(container, outside int64) (limit int64, ok bool) {
	limit = container - outside - container/10
	return limit, limit >= minGoMemory
}

// containerMemory reads the container's memory limit for serve, from the
// machine's root or from root (--cgroup-root, for tests), and logs why
// when it cannot (the node then runs as if it had none).
func containerMemory(log *slog.Logger, root string) int64 {
	if root == "" {
		if runtime.GOOS != "linux" {
			return 0
		}
		root = "/"
	}
	limit, err := cgroupMemoryLimit(os.DirFS(root))
	if err != nil {
		log.Warn("the container's memory limit could not be read; running as if there were none", "err", err)
		return 0
	}
	return limit
}

// privatePostgresMemory is what the private PostgreSQL (a child process, in
// the same container) is counted to hold: its 64 MB of shared buffers and
// its connections' own memory.
const privatePostgresMemory = 128 << 20

// nodeMemory is what a node holds beside the Go runtime's own memory, and
// the reply budget that lives in it.
type nodeMemory struct {
	// s3In is the S3 transfers' memory (mapped outside Go's heap) in a
	// container of that many bytes (s3.Config.MemoryIn); nil when the
	// node's files are not on S3.
	s3In func(container int64) int64
	// pg is the private PostgreSQL's share (privatePostgresMemory), or 0.
	pg int64
	// replies is --sftp-reply-memory: replies queued, on Go's heap.
	replies int64
}

// s3 is the S3 transfers' memory in a container of container bytes.
func (n nodeMemory) s3(container int64) int64 {
	if n.s3In == nil {
		return 0
	}
	return n.s3In(container)
}

// outside is what the node holds outside Go's memory in a container of
// container bytes.
func (n nodeMemory) outside(container int64) int64 { return n.s3(container) + n.pg }

// leastContainer is the smallest container, in whole MiB, that leaves the
// Go runtime minGoMemory. The S3 transfers' default memory grows with the
// container, so it is searched for (what is left grows with the
// container), not solved as if the transfers' memory were fixed.
func (n nodeMemory) leastContainer() int64 {
	lo, hi := int64(1), int64(1)<<30 // MiB: up to a PiB
	for lo < hi {
		mid := (lo + hi) / 2
		if _, ok := goMemoryLimit(mid<<20, n.outside(mid<<20)); ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo << 20
}

// applyMemoryLimit gives the Go runtime a soft limit under the container's
// (goMemoryLimit), with what the node holds outside it set aside, unless
// there is no container limit or GOMEMLIMIT is set. It logs what it set, or
// why the container is too small to set one, and warns where the SFTP
// replies' budget, full, would leave the rest of Go under minGoMemory.
func applyMemoryLimit(log *slog.Logger, container int64, n nodeMemory) {
	if container == 0 {
		return
	}
	attrs := []any{"container", container, "s3_transfer_memory", n.s3(container), "private_postgresql", n.pg}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("container memory limit; the Go runtime's is GOMEMLIMIT's", append(attrs, "gomemlimit", v)...)
		return
	}
	limit, ok := goMemoryLimit(container, n.outside(container))
	if !ok {
		advice := "raise the container's limit (least: the smallest that would do)"
		if n.s3In != nil {
			advice += ", or set a smaller memory in the storage URL"
		}
		log.Warn("the container's memory limit leaves the Go runtime too little: no soft limit set; "+advice,
			append(attrs, "least", n.leastContainer())...)
		return
	}
	debug.SetMemoryLimit(limit)
	log.Info("container memory limit; the Go runtime's soft limit is set under it", append(attrs, "go_memory_limit", limit)...)
	if n.replies+minGoMemory > limit {
		log.Warn("--sftp-reply-memory leaves the rest of the Go runtime under 64 MiB in this container when replies to slow clients fill it; lower it, or raise the container's limit",
			"sftp_reply_memory", n.replies, "go_memory_limit", limit)
	}
}

// limitMemory applies the container's memory limit (applyMemoryLimit) for
// this node: its S3 transfers' memory, which on Linux is mapped outside the
// heap, and the private PostgreSQL, when it runs one, set aside.
func (c *ServeCmd) limitMemory(log *slog.Logger, container int64, store fileStore, privatePostgres bool) {
	n := nodeMemory{replies: c.SFTP.Resources.ReplyMemory}
	if st, ok := store.(*s3.Store); ok && runtime.GOOS == "linux" {
		cfg := st.Config()
		n.s3In = cfg.MemoryIn
	}
	if privatePostgres {
		n.pg = privatePostgresMemory
	}
	applyMemoryLimit(log, container, n)
}
