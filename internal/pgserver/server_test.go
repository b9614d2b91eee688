//go:build unix

package pgserver

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a Skiff stand-in that starts a server on
// the given data directory, prints its URL and waits to be killed.
const helperEnv = "SKIFF_PGSERVER_TEST_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		s, err := Start(context.Background(), Options{DataDir: dir, Ephemeral: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(s.URL("postgres"))
		select {}
	}
	os.Exit(m.Run())
}

// newDataDir is a data directory path in a folder the server's user can
// enter, removed when the test ends.
func newDataDir(t *testing.T) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "skiff-pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(parent, "data")
}

func mustStart(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func mustExec(t *testing.T, url string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func queryString(url, query string) (string, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var s string
	err = db.QueryRow(query).Scan(&s)
	return s, err
}

func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	// Too long a path for a Unix socket in the data directory.
	dir := filepath.Join(newDataDir(t), strings.Repeat("long-", 20))
	opts := Options{DataDir: dir, Ephemeral: true}
	s := mustStart(t, opts)
	mustExec(t, s.URL("postgres"), "CREATE DATABASE kept")
	mustExec(t, s.URL("kept"), "CREATE TABLE notes (body text)", "INSERT INTO notes VALUES ('still here')")

	t.Run("does not run as root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("tests do not run as root")
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Errorf("data directory is owned by root")
		}
	})

	t.Run("a second server on the same data refuses to start", func(t *testing.T) {
		s2, err := Start(context.Background(), opts)
		if err == nil {
			s2.Stop()
			t.Fatal("two servers run on one data directory")
		}
		if !strings.Contains(err.Error(), "another PostgreSQL seems to run on this data directory") {
			t.Errorf("error does not explain: %v", err)
		}
	})

	t.Run("stop", func(t *testing.T) {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.Done():
		default:
			t.Error("Done is not closed after Stop")
		}
		if err := s.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if _, err := queryString(s.URL("kept"), "SELECT 1::text"); err == nil {
			t.Error("the server still answers after Stop")
		}
		if _, err := os.Stat(s.sockDir); s.sockDir == dir || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the socket folder %s is left behind (%v)", s.sockDir, err)
		}
	})

	t.Run("a port in use is reported", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		s2, err := Start(context.Background(), Options{DataDir: dir, Ephemeral: true, Port: port})
		if err == nil {
			s2.Stop()
			t.Fatal("started on a port in use")
		}
		if !errors.Is(err, errPortInUse) || !strings.Contains(err.Error(), "port "+strconv.Itoa(port)) {
			t.Errorf("error does not name the port: %v", err)
		}
	})

	t.Run("a stale lock file from a crash is ignored", func(t *testing.T) {
		// After a reboot the crashed server's process id often belongs to some
		// other program, which PostgreSQL alone takes for a live server.
		// The program runs as the data directory's owner: PostgreSQL takes
		// processes it may not signal for dead.
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		sleep := exec.Command("sleep", "60")
		if os.Geteuid() == 0 {
			sleep.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: st.Uid, Gid: st.Gid}}
		}
		if err := sleep.Start(); err != nil {
			t.Skip("no sleep program:", err)
		}
		defer func() { sleep.Process.Kill(); sleep.Wait() }()
		lock := filepath.Join(dir, "postmaster.pid")
		if err := os.WriteFile(lock, fmt.Appendf(nil, "%d\n%s\n", sleep.Process.Pid, dir), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(lock, int(st.Uid), int(st.Gid)); err != nil {
			t.Fatal(err)
		}

		s2 := mustStart(t, opts)
		got, err := queryString(s2.URL("kept"), "SELECT body FROM notes")
		if err != nil || got != "still here" {
			t.Errorf("after a restart the data reads %q, %v", got, err)
		}
	})
}

func TestStartExplainsBadDataDirectories(t *testing.T) {
	t.Parallel()
	t.Run("not a cluster", func(t *testing.T) {
		dir := newDataDir(t)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Start(context.Background(), Options{DataDir: dir})
		if err == nil || !strings.Contains(err.Error(), "is not empty and holds no PostgreSQL cluster") {
			t.Errorf("got %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
			t.Errorf("the folder's file is gone: %v", err)
		}
	})
	t.Run("other version", func(t *testing.T) {
		dir := newDataDir(t)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("9\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Start(context.Background(), Options{DataDir: dir, Binaries: &Binaries{Dir: t.TempDir(), Major: 15}})
		if err == nil || !strings.Contains(err.Error(), "was created by PostgreSQL 9, not 15") {
			t.Errorf("got %v", err)
		}
		_, err = Start(context.Background(), Options{DataDir: dir})
		if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "for version 9") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("out of reach of the server's user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root hands the data directory to another user")
		}
		parent := t.TempDir() // private to root
		_, err := Start(context.Background(), Options{DataDir: filepath.Join(parent, "data")})
		if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "chmod o+x") {
			t.Errorf("got %v", err)
		}
	})
}

func TestServerStopsWhenItsOwnerDies(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	t.Parallel()
	dir := newDataDir(t)
	owner := exec.Command(os.Args[0], "-test.run=^$")
	owner.Env = append(os.Environ(), helperEnv+"="+dir)
	var stderr bytes.Buffer
	owner.Stderr = &stderr
	out, err := owner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Process.Kill(); owner.Wait() })
	url, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(url, "postgres://") {
		owner.Wait()
		t.Fatalf("the owner did not start a server: %s", stderr.String())
	}
	url = strings.TrimSpace(url)
	if _, err := queryString(url, "SELECT 1::text"); err != nil {
		t.Fatal(err)
	}

	owner.Process.Kill() // no chance to clean up
	owner.Wait()
	// PostgreSQL removes its lock file last thing when it shuts down. The
	// deadline is generous: only "never" is a failure.
	lock := filepath.Join(dir, "postmaster.pid")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(lock); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still runs a minute after its owner was killed")
		}
	}
	if _, err := queryString(url, "SELECT 1::text"); err == nil {
		t.Error("the server still answers after its owner was killed")
	}
}

func TestFindBinaries(t *testing.T) {
	root := t.TempDir()
	install := func(dir, version string) string {
		t.Helper()
		dir = filepath.Join(root, dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, script := range map[string]string{
			"initdb":   "#!/bin/sh\nexit 0\n",
			"postgres": "#!/bin/sh\necho 'postgres (PostgreSQL) " + version + "'\n",
		} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	v13 := install("lib/13/bin", "13.4")
	v16 := install("lib/16/bin", "16.1 (Debian 16.1-1)")
	install("lib/9.6/bin", "9.6.24")
	v14 := install("local/bin", "14.2")
	// Only half an installation: ignored.
	half := filepath.Join(root, "half")
	if err := os.MkdirAll(half, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "initdb"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A link on PATH to an installation, as Homebrew and some images make.
	linked := filepath.Join(root, "linked")
	if err := os.MkdirAll(linked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(v13, "initdb"), filepath.Join(linked, "initdb")); err != nil {
		t.Fatal(err)
	}
	globs := []string{filepath.Join(root, "lib/*/bin")}

	for _, tc := range []struct {
		name    string
		path    []string
		globs   []string
		major   int
		wantDir string
	}{
		{"newest installed", []string{half}, globs, 0, v16},
		{"PATH first", []string{v14}, globs, 0, v14},
		{"the data directory's version", []string{v14}, globs, 13, v13},
		{"links resolved", []string{linked}, nil, 0, v13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := findBinaries(strings.Join(tc.path, string(os.PathListSeparator)), tc.globs, tc.major)
			if err != nil {
				t.Fatal(err)
			}
			if b.Dir != tc.wantDir {
				t.Errorf("found %s, want %s", b.Dir, tc.wantDir)
			}
		})
	}

	t.Run("none installed", func(t *testing.T) {
		_, err := findBinaries(half, []string{filepath.Join(root, "nothing/*/bin")}, 0)
		if !errors.Is(err, ErrNotInstalled) {
			t.Fatalf("got %v", err)
		}
		for _, fix := range []string{"apt-get install postgresql", "SKIFF_DATABASE_URL"} {
			if !strings.Contains(err.Error(), fix) {
				t.Errorf("error %q does not suggest %q", err, fix)
			}
		}
	})
	t.Run("version not installed", func(t *testing.T) {
		_, err := findBinaries("", globs, 12)
		if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "install PostgreSQL 12") {
			t.Errorf("got %v", err)
		}
	})
}

func TestParseMajor(t *testing.T) {
	for in, want := range map[string]int{
		"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n": 15,
		"postgres (PostgreSQL) 9.6.24\n":                         9,
		"postgres (PostgreSQL) 17devel\n":                        17,
		"postgres (PostgreSQL) 16beta1\n":                        16,
	} {
		if got, err := parseMajor(in); err != nil || got != want {
			t.Errorf("parseMajor(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseMajor("pg_ctl 15\n"); err == nil {
		t.Error("parseMajor accepted a foreign version line")
	}
}

// The usual packagers' folders are searched even when they are not on PATH:
// Homebrew's versioned formulae in particular never are.
func TestInstallDirsCoverPackagers(t *testing.T) {
	for _, dir := range []string{
		"/usr/lib/postgresql/17/bin",                          // Debian, Ubuntu
		"/usr/pgsql-16/bin",                                   // PGDG RPMs
		"/opt/homebrew/opt/postgresql@17/bin",                 // Homebrew, Apple silicon
		"/usr/local/opt/postgresql@16/bin",                    // Homebrew, Intel
		"/Applications/Postgres.app/Contents/Versions/17/bin", // Postgres.app
		"/opt/local/lib/postgresql16/bin",                     // MacPorts
		"/usr/local/bin",                                      // FreeBSD packages
	} {
		matched := false
		for _, pattern := range installDirs {
			if ok, _ := filepath.Match(pattern, dir); ok {
				matched = true
			}
		}
		if !matched {
			t.Errorf("%s is not searched", dir)
		}
	}
}

// The socket path must fit the smallest sun_path of the supported systems:
// 104 bytes with its terminating NUL on macOS and FreeBSD.
func TestSocketPathFitsEverywhere(t *testing.T) {
	longest := strings.Repeat("d", maxSocketDir) + "/.s.PGSQL.65535"
	if len(longest)+1 > 104 {
		t.Errorf("a %d-byte socket folder gives a %d-byte socket path; macOS allows 103", maxSocketDir, len(longest))
	}
}
