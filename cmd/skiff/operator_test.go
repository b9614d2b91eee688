package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/pgserver"
)

// These tests run the skiff binary the way an operator does, against a
// PostgreSQL server set up as docs/OPERATIONS.md says: password logins over
// TCP (no trust), a tables' owner without CREATEROLE or superuser rights,
// and a runtime role that may only become skiff_app.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// skiffBinary builds this package's binary once per test run.
func skiffBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "skiff-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "skiff")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// operatorPG is a PostgreSQL server with password authentication and the
// documented roles.
type operatorPG struct {
	srv   *pgserver.Server
	admin *sql.DB // the superuser
	port  int
}

const (
	opSuperPassword   = "super-secret"
	opOwnerPassword   = "owner-secret"
	opServicePassword = "service-secret"
	opBackupPassword  = "backup-secret"
)

// startOperatorPG starts the server for t and its subtests.
func startOperatorPG(t *testing.T) *operatorPG {
	t.Helper()
	if _, err := pgserver.FindBinaries(); err != nil {
		t.Skipf("no PostgreSQL installed: %v", err)
	}
	dir := filepath.Dir(newDataDir(t))
	srv, err := pgserver.Start(context.Background(), pgserver.Options{DataDir: filepath.Join(dir, "pg"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	admin, err := sql.Open("postgres", srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	// Passwords over TCP, as in production; the superuser keeps its socket.
	if _, err := admin.Exec(`ALTER ROLE ` + pgserver.Superuser + ` PASSWORD ` + pq.QuoteLiteral(opSuperPassword)); err != nil {
		t.Fatal(err)
	}
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(dir, "pg", "pg_hba.conf"), []byte(hba), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	p := &operatorPG{srv: srv, port: srv.Port()}
	p.admin, err = sql.Open("postgres", p.url(pgserver.Superuser, opSuperPassword, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.admin.Close() })
	if err := p.admin.Ping(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *operatorPG) url(role, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: fmt.Sprintf("127.0.0.1:%d", p.port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

func (p *operatorPG) exec(t *testing.T, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := p.admin.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// newDatabase creates an empty database owned by skiff_owner.
func (p *operatorPG) newDatabase(t *testing.T, name string) (ownerURL, serviceURL string) {
	t.Helper()
	p.exec(t, "CREATE DATABASE "+name+" OWNER skiff_owner")
	return p.url("skiff_owner", opOwnerPassword, name), p.url("skiff_service", opServicePassword, name)
}

// run is one finished run of the binary.
type run struct {
	code           int
	stdout, stderr string
}

// runSkiff runs the binary with args in an empty working folder and an
// environment without SKIFF_ variables (plus env), and waits for it.
func runSkiff(t *testing.T, env []string, args ...string) run {
	t.Helper()
	cmd := exec.Command(skiffBinary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(cleanEnv(), testServeEnv(args)...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(cmd.Dir); len(entries) > 0 {
		t.Errorf("skiff %v left files in its working folder (a private PostgreSQL?): %v", args, entries)
	}
	return r
}

// testServeEnv are the settings an external database requires that these
// tests leave alone (a test's own env comes after, and wins): mail as .eml
// files and, unless args name a data or storage folder, one storage
// directory for the whole run, as nodes share theirs (each run has its own
// working folder, so the default <data-dir>/files would differ from run to
// run; a fresh database adopts the marker already there).
func testServeEnv(args []string) []string {
	testStorageOnce.Do(func() {
		testStorageDir, _ = os.MkdirTemp("", "skiff-storage-")
	})
	env := []string{"SKIFF_SMTP_URL=file://" + filepath.Join(testStorageDir, "mail"),
		// No container, whatever the machine's cgroup says (memlimit.go).
		"SKIFF_CGROUP_ROOT=" + filepath.Join(testStorageDir, "no-cgroup")}
	for _, a := range args {
		if strings.HasPrefix(a, "--data-dir") || strings.HasPrefix(a, "--storage-dir") {
			return env
		}
	}
	return append(env, "SKIFF_STORAGE_DIR="+filepath.Join(testStorageDir, "files"))
}

var (
	testStorageOnce sync.Once
	testStorageDir  string
)

func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SKIFF_") {
			env = append(env, e)
		}
	}
	return env
}

// lastLine is the last line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// wantFailure checks that r failed with code, no panic, and a last line
// that says every one of wants.
func wantFailure(t *testing.T, r run, code int, wants ...string) {
	t.Helper()
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("a panic:\n%s", r.stderr)
	}
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstderr:\n%s", r.code, code, r.stderr)
	}
	last := lastLine(r.stderr)
	for _, w := range wants {
		if !strings.Contains(last, w) {
			t.Errorf("last line %q does not say %q", last, w)
		}
	}
	for _, secret := range []string{opOwnerPassword, opServicePassword, opBackupPassword, opSuperPassword, "wrong-password"} {
		if strings.Contains(r.stderr, secret) {
			t.Errorf("the output holds a password:\n%s", r.stderr)
		}
	}
}

// served is a running `skiff serve` binary.
type served struct {
	cmd     *exec.Cmd
	http    string
	sftp    string
	stderr  *syncBuffer
	exited  chan struct{}
	exitErr error
}

var (
	bannerGraphQL = regexp.MustCompile(`GraphQL:\s+(http://\S+)/graphql`)
	bannerSFTP    = regexp.MustCompile(`SFTP:\s+(\S+)`)
)

// serveBinary starts `skiff serve` with args and waits until it is ready.
func serveBinary(t *testing.T, env []string, args ...string) *served {
	t.Helper()
	s := startServeBinary(t, env, args...)
	if s.http == "" {
		t.Fatalf("serve stopped (%v):\n%s", s.exitErr, s.stderr.String())
	}
	return s
}

// startServeBinary starts serve and returns when it is ready or has exited.
func startServeBinary(t *testing.T, env []string, args ...string) *served {
	t.Helper()
	return startServeBinaryAt(t, skiffBinary(t), env, args...)
}

// serveBinaryAt is serveBinary with another build of skiff.
func serveBinaryAt(t *testing.T, bin string, env []string, args ...string) *served {
	t.Helper()
	s := startServeBinaryAt(t, bin, env, args...)
	if s.http == "" {
		t.Fatalf("%s serve stopped (%v):\n%s", bin, s.exitErr, s.stderr.String())
	}
	return s
}

func startServeBinaryAt(t *testing.T, bin string, env []string, args ...string) *served {
	t.Helper()
	args = append([]string{"serve", "--http-addr=127.0.0.1:0", "--sftp-addr=127.0.0.1:0", "--shutdown-grace=2s"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	if bin == skiffBinary(t) { // an older release knows neither setting
		cmd.Env = append(cmd.Env, testServeEnv(args)...)
	}
	cmd.Env = append(cmd.Env, env...)
	s := &served{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			if m := bannerGraphQL.FindStringSubmatch(line); m != nil {
				s.http = m[1]
			}
			if m := bannerSFTP.FindStringSubmatch(line); m != nil && s.sftp == "" {
				s.sftp = m[1]
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", s.stderr.String())
		}
	})
	select {
	case <-ready:
	case <-s.exited:
		s.http = ""
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not come up:\n%s", s.stderr.String())
	}
	return s
}

// readyz is the status of GET /readyz.
func (s *served) readyz(t *testing.T) int {
	t.Helper()
	res, err := http.Get(s.http + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// openAs opens a pool as the URL's role, closed when t ends.
func (p *operatorPG) openAs(t *testing.T, u string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
