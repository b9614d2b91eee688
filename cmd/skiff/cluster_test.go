package main

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/s3test"
)

// Loopback addresses of the cluster test: clients reach HAProxy on
// clusterFront, from clusterClient (so that the nodes' logs show whose
// address the PROXY header carried, not the balancer's).
const (
	clusterFront  = "127.0.0.31"
	clusterClient = "127.0.0.32"
)

// haproxy runs HAProxy in the foreground with cfg until the test ends.
func haproxy(t *testing.T, cfg string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("haproxy is not installed (Debian package haproxy; .ci/run installs it)")
	}
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	var logs syncBuffer
	cmd := exec.Command(bin, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy's log:\n%s", logs.String())
		}
	})
}

// freeAddrOn is an address of host with a port nothing listens on now (for
// a program that must be told its port).
func freeAddrOn(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sftpLogins counts the SFTP logins a node logged from the cluster's client.
func sftpLogins(s *served) int {
	n := 0
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if strings.Contains(line, "sftp login") && strings.Contains(line, "remote="+clusterClient+" ") {
			n++
		}
	}
	return n
}

// Two `skiff serve` nodes on one PostgreSQL and one storage folder behind a
// real HAProxy in TCP mode with PROXY protocol v2, as docs/OPERATIONS.md
// lays the deployment out. Through the balancer: logins land on both
// nodes, each node sees the client's own address, a file uploaded through
// one node is downloaded through the other, and when the node serving a
// download is killed (SIGKILL) the client reconnects through the balancer,
// resumes the download on the other node, and the file arrives whole.
func TestClusterBehindHAProxy(t *testing.T) { clusterBehindHAProxy(t, nil) }

// The same cluster with the files in one S3 bucket (storage/s3 on a
// versitygw, internal/s3test) instead of a shared directory.
func TestClusterBehindHAProxyOnS3(t *testing.T) {
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Skip("the OpenSSH sftp client is not installed")
	}
	srv := s3test.Start(t)
	clusterBehindHAProxy(t, func(env []string) []string {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "SKIFF_STORAGE_DIR=") })
		return append(append(env, "SKIFF_STORAGE_URL="+srv.URL("cluster")), srv.Env()...)
	})
}

// clusterBehindHAProxy runs the cluster test; storage, if not nil, changes
// the nodes' environment to another storage.
func clusterBehindHAProxy(t *testing.T, storage func(env []string) []string) {
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Skip("the OpenSSH sftp client is not installed")
	}
	env := append(nodesEnv(t), "SKIFF_PROXY_TRUSTED=127.0.0.1/32")
	if storage != nil {
		env = storage(env)
	}
	nodes := []*served{
		serveBinary(t, env, "--data-dir="+newDataDir(t)),
		serveBinary(t, env, "--data-dir="+newDataDir(t)),
	}
	front := freeAddrOn(t, clusterFront)
	haproxy(t, fmt.Sprintf(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  retries 3
  option redispatch
frontend sftp
  bind %s
  default_backend skiff
backend skiff
  balance roundrobin
  server one %s send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 2
  server two %s send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 2
`, front, nodes[0].sftp, nodes[1].sftp))
	waitListening(t, front)

	login := ownerSFTPLogin(t, nodes[0], "boss@acme.example", acmePassword)
	run := func(options []string, commands string) (string, error) {
		return sftpRunWith(t, front, login, "", acmePassword, append([]string{"-o", "BindAddress=" + clusterClient}, options...), commands)
	}

	// Round robin: two sessions, one on each node, each seeing the client's
	// address from the PROXY header. The first uploads, the second downloads.
	dir := t.TempDir()
	local := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(local, []byte("through the balancer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(nil, "put "+local+" a.txt\n"); err != nil {
		t.Fatalf("upload through the balancer: %v\n%s", err, out)
	}
	back := filepath.Join(dir, "back.txt")
	if out, err := run(nil, "get a.txt "+back+"\n"); err != nil {
		t.Fatalf("download through the balancer: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(back); string(b) != "through the balancer\n" {
		t.Errorf("downloaded %q", b)
	}
	if a, b := sftpLogins(nodes[0]), sftpLogins(nodes[1]); a != 1 || b != 1 {
		t.Fatalf("logins from %s by node: %d and %d, want one each (round robin, PROXY v2 client address)", clusterClient, a, b)
	}

	// HAProxy's health checks (connect, PROXY LOCAL, reset) every 300 ms are
	// not failures worth a log line.
	for i, n := range nodes {
		if strings.Contains(n.stderr.String(), "sftp handshake failed") {
			t.Errorf("node %d logs the balancer's health checks as failed handshakes", i+1)
		}
	}

	// A download, slowed to take seconds, and the node serving it killed.
	big := make([]byte, 24<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	bigFile := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(bigFile, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(nil, "put "+bigFile+" big.bin\n"); err != nil {
		t.Fatalf("upload big.bin: %v\n%s", err, out)
	}
	before := []int{sftpLogins(nodes[0]), sftpLogins(nodes[1])}
	got := filepath.Join(dir, "got.bin")
	done := make(chan error, 1)
	go func() {
		_, err := run([]string{"-l", "32000"}, "get big.bin "+got+"\n") // 4 MB/s: about 6 s
		done <- err
	}()
	var victim, survivor *served
	deadline := time.Now().Add(20 * time.Second)
	for victim == nil {
		for i, n := range nodes {
			if sftpLogins(n) > before[i] {
				victim, survivor = n, nodes[1-i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow download's session did not start on either node")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		if st, err := os.Stat(got); err == nil && st.Size() > 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow download did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	if err := <-done; err == nil {
		if st, _ := os.Stat(got); st != nil && st.Size() == int64(len(big)) {
			t.Fatal("the download finished before the node was killed: slow it down further")
		}
	}
	partial, _ := os.Stat(got)
	if partial == nil || partial.Size() == 0 || partial.Size() >= int64(len(big)) {
		t.Fatalf("after the kill the local file is %v, want a part of it", partial)
	}
	// The client reconnects through the balancer (HAProxy has marked the
	// dead node down, or redispatches) and resumes where it stopped.
	survivorBefore := sftpLogins(survivor)
	var out string
	var err error
	for range 20 {
		if out, err = run(nil, "reget big.bin "+got+"\n"); err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("resume through the balancer: %v\n%s", err, out)
	}
	if sftpLogins(survivor) <= survivorBefore {
		t.Errorf("the resumed download did not go to the surviving node")
	}
	whole, _ := os.ReadFile(got)
	if sha256.Sum256(whole) != sha256.Sum256(big) {
		t.Fatalf("the resumed download differs: %d of %d bytes, first difference at %d", len(whole), len(big), firstDifference(whole, big))
	}
	// Nothing else was lost: the first file is there through the survivor.
	if out, err := run(nil, "get a.txt "+back+"\n"); err != nil {
		t.Fatalf("download after the kill: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(back); string(b) != "through the balancer\n" {
		t.Errorf("after the kill a.txt reads %q", b)
	}
}

// firstDifference is the first offset at which a and b differ.
func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
