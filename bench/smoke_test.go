package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgserver"
	"github.com/skiffhq/skiff/internal/s3test"
)

// serverEnv makes the test binary act as the benchmark's Skiff server, the
// way skiffbench re-executes itself with "server".
const serverEnv = "SKIFFBENCH_TEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		if err := RunServer(context.Background(), os.Args[1:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole suite at toy sizes so that it keeps working. It
// measures nothing worth reading; it fails when a benchmark breaks. Without
// sshd it runs Skiff's side alone, as the suite's smoke mode does.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and runs clients for about half a minute")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	cfg := SmokeConfig(DefaultConfig())
	// The default work directory (/dev/shm or the system's temporary
	// folder), not t.TempDir(): PostgreSQL runs as another user when the
	// tests run as root and could not enter a 0700 test folder. Run removes
	// what it made.
	cfg.Out = &out
	cfg.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.ServerCommand = func(args ...string) *exec.Cmd {
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), serverEnv+"=1")
		return cmd
	}
	if _, err := findSSHD(""); err != nil {
		t.Log("sshd is not installed: the OpenSSH baseline is skipped (apt-get install openssh-server)")
	}
	// A guard against a hang, not a speed check: the suite builds skiff and
	// starts PostgreSQL, which on a shared, loaded machine took more than 3
	// minutes (the build was killed mid-way).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := Run(ctx, cfg); err != nil {
		t.Fatalf("suite: %v\nlog:\n%s", err, logs.String())
	}
	report := out.String()
	t.Log(report)
	want := []string{"### Idle authenticated SFTP sessions", "| Skiff data-path server"}
	if _, err := pgserver.FindBinaries(); err == nil {
		want = append(want, "### Public-key logins", "### Password logins", "| Skiff: skiff serve",
			"### GraphQL", "| hand-written SQL | 100 |", "### Key-login lookup at scale")
	} else {
		t.Log("PostgreSQL is not installed: the benchmarks that need it are skipped")
	}
	if _, err := exec.LookPath("sftp"); err == nil {
		want = append(want, "### Transfer throughput", "| aes128-gcm | download | 1 | Skiff |", "| aes128-gcm | upload | 2 | Skiff |",
			"| default → aes128-ctr", "| download | 1 | Skiff, no ChaCha20 offered |")
	}
	if _, err := exec.LookPath("rclone"); err == nil {
		if _, err := s3test.Binary(); err == nil {
			// The disk row compares only when the client picked the
			// same cipher on both servers, which the report names.
			want = append(want, "### S3-backed storage", "| download MB/s, Skiff on local disk (same run, same cipher) |",
				"it picked aes128-ctr, MAC hmac-sha2-256-etm@openssh.com, on S3 and on the disk",
				"### Small files on S3-backed storage", "| OpenSSH `sftp`: 10 `put`s, one after the other |")
		}
	}
	for _, w := range want {
		if !strings.Contains(report, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	// Every login the load generator made must have worked.
	for line := range strings.Lines(report) {
		if strings.HasPrefix(line, "| Skiff: ") && strings.Contains(line, "directory |") {
			cells := strings.Split(line, "|")
			if failures := strings.TrimSpace(cells[7]); failures != "0" {
				t.Errorf("Skiff login failures: %s", failures)
			}
		}
	}
}

func TestParseProcStat(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != os.Getppid() {
		t.Errorf("ppid = %d, want %d", st.ppid, os.Getppid())
	}
	if st.rss <= 0 {
		t.Errorf("rss = %d", st.rss)
	}
	hwm, err := peakRSS(os.Getpid())
	if err != nil || hwm < st.rss/2 {
		t.Errorf("VmHWM = %d, %v; rss %d", hwm, err, st.rss)
	}
}

func TestMedianPercentile(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]int64{4, 1, 2, 3}); got != 2 {
		t.Errorf("median even = %v", got) // (2+3)/2 in integers
	}
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	if p := percentile(ds, 99); p != 99 {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(ds, 50); p != 50 {
		t.Errorf("p50 = %v", p)
	}
}

func TestNegotiatedCipher(t *testing.T) {
	debug := "debug1: kex: algorithm: curve25519-sha256\ndebug1: kex: server->client cipher: aes128-gcm@openssh.com MAC: <implicit> compression: none\n"
	if got, _ := negotiatedAlgorithms(debug); got != "aes128-gcm@openssh.com" {
		t.Errorf("got %q", got)
	}
}
