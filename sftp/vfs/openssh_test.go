package vfs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
)

// OpenSSH's sftp client can talk to a server on its stdin and stdout
// (sftp -D), which tests the tree with the real client and no SSH. The
// test binary is that server when stdioBaseEnv is set.
const (
	stdioBaseEnv   = "SKIFF_VFS_TEST_STDIO_BASE"
	stdioJailedEnv = "SKIFF_VFS_TEST_STDIO_JAILED"
)

func TestMain(m *testing.M) {
	if base := os.Getenv(stdioBaseEnv); base != "" {
		os.Exit(serveStdio(base, os.Getenv(stdioJailedEnv) == "1"))
	}
	code := m.Run()
	s3test.StopShared()
	os.Exit(code)
}

type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return os.Stdin.Close() }

func serveStdio(base string, jailed bool) int {
	store, err := storage.NewLocal(base)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer store.Close()
	s, err := vfs.NewSession(context.Background(), vfs.Config{
		AccountID: accountID, UserID: userID, Jailed: jailed, Storage: store,
		Gate:   vfs.GateFunc(func(context.Context) error { return nil }),
		Shares: vfs.SharesFunc(func(context.Context) ([]vfs.SharedFolder, error) { return nil, nil }),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = s.Serve(stdio{})
	s.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// openSSH runs OpenSSH's sftp client in batch mode against server (a
// command line), in dir, and returns what it printed.
func openSSH(t testing.TB, dir, server string, env []string, batch string, args ...string) (string, error) {
	t.Helper()
	sftpBin, err := exec.LookPath("sftp")
	if err != nil {
		t.Skip("OpenSSH sftp client not installed")
	}
	batchFile := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batchFile, []byte(batch), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sftpBin, append([]string{"-D", server, "-b", batchFile}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// skiffServer is the command line that makes this test binary serve base.
func skiffServer(t testing.TB, base string, jailed bool) (string, []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(exe, " \t") {
		t.Skip("test binary path has spaces; sftp -D cannot run it")
	}
	env := []string{stdioBaseEnv + "=" + base}
	if jailed {
		env = append(env, stdioJailedEnv+"=1")
	}
	return exe + " -test.run=^$", env
}

func TestOpenSSHClient(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "data")
	server, env := skiffServer(t, base, false)
	home := filepath.Join(base, accountID, "users", userID)

	local := filepath.Join(dir, "local")
	if err := os.Mkdir(local, 0o750); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(local, "data.bin"), data, 0o640); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(local, "data.bin"), old, old); err != nil {
		t.Fatal(err)
	}

	out, err := openSSH(t, local, server, env, `pwd
mkdir docs
cd docs
put -p data.bin
put data.bin copy.bin
get copy.bin back.bin
rename copy.bin moved.bin
chmod 600 moved.bin
ls -l
df -h
-symlink moved.bin link.bin
-ln moved.bin hard.bin
-get /etc/passwd passwd
-cd ../../..
pwd
`)
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	for _, want := range []string{"Remote working directory: /My Files", "moved.bin", "data.bin", "Remote working directory: /\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(local, "back.bin")); !bytes.Equal(got, data) {
		t.Error("get returned other bytes than put sent")
	}
	if got, _ := os.ReadFile(filepath.Join(home, "docs", "moved.bin")); !bytes.Equal(got, data) {
		t.Error("stored file differs")
	}
	if fi, err := statPath(filepath.Join(home, "docs", "data.bin")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("put -p: %v, %v; want mtime %v", fi, err, old)
	}
	for _, name := range []string{"link.bin", "hard.bin", "copy.bin"} {
		if exists(filepath.Join(home, "docs", name)) {
			t.Errorf("%s exists", name)
		}
	}
	if exists(filepath.Join(local, "passwd")) {
		t.Error("/etc/passwd was downloaded")
	}

	// reput resumes a partial upload in place.
	partial := filepath.Join(home, "docs", "resume.bin")
	if err := os.WriteFile(partial, data[:1<<20], 0o640); err != nil {
		t.Fatal(err)
	}
	before, _ := statPath(partial)
	if out, err := openSSH(t, local, server, env, "reput data.bin docs/resume.bin\n"); err != nil {
		t.Fatalf("reput: %v\n%s", err, out)
	}
	after, _ := statPath(partial)
	if got, _ := os.ReadFile(partial); !bytes.Equal(got, data) || !os.SameFile(before, after) {
		t.Error("reput did not complete the file in place")
	}

	// Large requests (-B) round-trip too.
	if out, err := openSSH(t, local, server, env, "put data.bin big.bin\nget big.bin big-back.bin\n", "-B", "261120"); err != nil {
		t.Fatalf("sftp -B: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(local, "big-back.bin")); !bytes.Equal(got, data) {
		t.Error("-B 261120 round trip differs")
	}
}

func TestOpenSSHClientJailed(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "data")
	server, env := skiffServer(t, base, true)
	out, err := openSSH(t, dir, server, env, `pwd
ls /
-cd "/My Files"
-mkdir "/My Files"
-put /etc/hostname
-cd ..
pwd
`)
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Remote working directory: /Projects Shared With Me\n") {
		t.Errorf("jailed start directory:\n%s", out)
	}
	_, listing, _ := strings.Cut(out, "sftp> ls /\n")
	listing, _, _ = strings.Cut(listing, "sftp>")
	if strings.TrimSpace(listing) != "/Projects Shared With Me" {
		t.Errorf("ls / showed %q to a jailed user", listing)
	}
	for _, want := range []string{"stat remote: No such file", `mkdir "/My Files": Permission denied`, "Permission denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if exists(filepath.Join(base, accountID, "users", userID)) {
		t.Error("a home was created for a jailed user")
	}
}

// BenchmarkOpenSSH moves a file with OpenSSH's sftp client through this
// server and through OpenSSH's own sftp-server (what internal-sftp runs),
// both without SSH, so the two servers compare directly:
//
//	go test -run XXX -bench OpenSSH -benchtime 3x ./sftp/vfs
func BenchmarkOpenSSH(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	base := filepath.Join(dir, "data")
	local := filepath.Join(dir, "local")
	if err := os.MkdirAll(local, 0o750); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(local, "src.bin"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	f.Close()

	skiff, env := skiffServer(b, base, false)
	ownDir := filepath.Join(dir, "openssh")
	if err := os.MkdirAll(ownDir, 0o750); err != nil {
		b.Fatal(err)
	}
	servers := []struct{ name, cmd, remote string }{
		{"skiff", skiff, "/My Files/dst.bin"},
		{"openssh", "/usr/lib/openssh/sftp-server", filepath.Join(ownDir, "dst.bin")},
	}
	for _, srv := range servers {
		if srv.name == "openssh" {
			if _, err := statPath(srv.cmd); err != nil {
				continue
			}
		}
		for _, dirn := range []string{"put", "get"} {
			b.Run(srv.name+"/"+dirn, func(b *testing.B) {
				batch := fmt.Sprintf("put src.bin %q\n", srv.remote)
				if dirn == "get" {
					if out, err := openSSH(b, local, srv.cmd, env, batch); err != nil {
						b.Fatalf("%v\n%s", err, out)
					}
					batch = fmt.Sprintf("get %q back.bin\n", srv.remote)
				}
				b.SetBytes(size)
				for b.Loop() {
					if out, err := openSSH(b, local, srv.cmd, env, batch); err != nil {
						b.Fatalf("%v\n%s", err, out)
					}
				}
			})
		}
	}
}
