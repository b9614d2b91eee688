package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// report collects the tables of a run, printed at the end as Markdown.
type report struct {
	sections []*section
}

type section struct {
	title  string
	header []string
	rows   [][]string
	notes  []string
}

func newReport() *report { return &report{} }

func (r *report) section(title string, header ...string) *section {
	s := &section{title: title, header: header}
	r.sections = append(r.sections, s)
	return s
}

func (s *section) row(cells ...string) { s.rows = append(s.rows, cells) }

func (s *section) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

func (r *report) write(w io.Writer, env []string) {
	fmt.Fprintln(w)
	for _, e := range env {
		fmt.Fprintf(w, "- %s\n", e)
	}
	for _, s := range r.sections {
		fmt.Fprintf(w, "\n### %s\n\n", s.title)
		fmt.Fprintf(w, "| %s |\n", strings.Join(s.header, " | "))
		seps := make([]string, len(s.header))
		for i := range seps {
			seps[i] = "---"
			if i > 0 {
				seps[i] = "--:"
			}
		}
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, row := range s.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		if len(s.notes) > 0 {
			fmt.Fprintln(w)
			for _, n := range s.notes {
				fmt.Fprintf(w, "%s\n", n)
			}
		}
	}
}

// environment describes the machine, for the top of the report.
func (r *runner) environment() []string {
	env := []string{
		"date: " + time.Now().UTC().Format("2006-01-02 15:04 MST"),
		fmt.Sprintf("machine: %s, %d logical CPUs, %s", cpuModel(), runtime.NumCPU(), kernel()),
		"Go: " + runtime.Version(),
	}
	if r.sshd != nil {
		env = append(env, "baseline: "+r.sshd.version+" (sshd, internal-sftp)")
	} else {
		env = append(env, "baseline: none ("+r.noSSHD+")")
	}
	env = append(env, "client: "+sshClientVersion()+"; servers and clients share the machine; work directory on "+fsType(r.work))
	if r.cfg.Smoke {
		env = append(env, "SMOKE RUN: tiny sizes, one repetition; the numbers mean nothing")
	}
	return env
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return runtime.GOOS
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
}

func freeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	// The field types differ between systems (FreeBSD's Bavail is signed).
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// median of a sample; NaN-free because callers never pass an empty one.
func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile by nearest rank, p in (0, 100].
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func kib(b float64) string { return fmt.Sprintf("%.0f KiB", b/1024) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
