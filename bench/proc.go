package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Linux reports CPU time in clock ticks of 1/USER_HZ seconds; USER_HZ is 100
// on every Linux architecture Go supports (it is fixed by the kernel ABI,
// unlike the kernel's internal HZ).
const userHZ = 100

// procStat is what the benchmarks read from /proc/<pid>/stat.
type procStat struct {
	ppid int
	// cpu is user+system time of the process plus that of its children
	// that have exited and been waited for. sshd forks a process per
	// connection (two with privilege separation) and reaps them, so once a
	// session has ended its CPU shows up in the listener's children fields.
	cpu time.Duration
	// rss is the resident set size now.
	rss int64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses itself, so split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	num := func(field int) int64 {
		v, _ := strconv.ParseInt(f[field-3], 10, 64)
		return v
	}
	ticks := num(14) + num(15) + num(16) + num(17) // utime stime cutime cstime
	return procStat{
		ppid: int(num(4)),
		cpu:  time.Duration(ticks) * time.Second / userHZ,
		rss:  num(24) * int64(os.Getpagesize()),
	}, nil
}

// processCPU returns the CPU time used so far by pid and its reaped
// descendants.
func processCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	return st.cpu, err
}

// peakRSS reads VmHWM, the high-water mark of the resident set size.
func peakRSS(pid int) (int64, error) {
	return statusField(pid, "VmHWM:")
}

// currentRSS reads VmRSS.
func currentRSS(pid int) (int64, error) {
	return statusField(pid, "VmRSS:")
}

func statusField(pid int, name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kib, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kib * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, name)
}

// resetPeakRSS resets VmHWM to the current RSS (Linux ≥ 4.0), so that the
// next peakRSS covers only what follows. It needs the right to write the
// process's clear_refs: same user, or root.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// descendants returns the live processes below pid (not pid itself).
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := make(map[int]int, len(entries))
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(p); err == nil {
			parent[p] = st.ppid
		}
	}
	var out []int
	for p := range parent {
		for a, n := parent[p], 0; a > 1 && n < 64; a, n = parent[a], n+1 {
			if a == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// waitNoDescendants waits until pid has no child processes left, so that
// their CPU time has been added to pid's, or until timeout.
func waitNoDescendants(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if len(descendants(pid)) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// treeRSS is the summed RSS of pid and its descendants. Shared pages (the
// sshd binary and libraries) are counted once per process, as they are in
// every per-process figure such as ps's; for a forking server that is the
// memory a capacity plan has to budget anyway.
func treeRSS(pid int) int64 {
	total := int64(0)
	for _, p := range append(descendants(pid), pid) {
		if st, err := readProcStat(p); err == nil {
			total += st.rss
		}
	}
	return total
}

// rssSampler records the peak of a memory figure while it runs. It is how
// the peak memory of a forking server (sshd) is measured, where no single
// process's VmHWM covers the sessions, and how a peak is split into its
// anonymous and file-backed parts, which VmHWM does not.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int64
}

// sampleRSS samples treeRSS(pid).
func sampleRSS(pid int, every time.Duration) *rssSampler {
	return sample(every, func() int64 { return treeRSS(pid) })
}

// sampleAnon samples pid's anonymous resident memory (RssAnon: its heap,
// stacks and anonymous mappings, not the program's pages).
func sampleAnon(pid int, every time.Duration) *rssSampler {
	return sample(every, func() int64 {
		v, _ := statusField(pid, "RssAnon:")
		return v
	})
}

func sample(every time.Duration, read func() int64) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			v := read()
			s.mu.Lock()
			s.peak = max(s.peak, v)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak seen.
func (s *rssSampler) Stop() int64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
