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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/s3test"
)

// Loopback addresses of the cluster test: clients reach HAProxy on
// clusterFront, from clusterClient (so that the nodes' logs show whose
// address the PROXY header carried, not the balancer's). clusterDedicated
// is the balancer's second frontend, an account's dedicated IP: it is in the
// nodes' --dedicated-ip-pool, and no node listens on it.
const (
	clusterFront     = "127.0.0.31"
	clusterClient    = "127.0.0.32"
	clusterDedicated = "127.0.0.33"
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
func sftpLogins(s *served) int { return clientLines(s, "sftp login") }

// clientLines counts the lines with message msg that a node logged about
// the cluster's client and that also hold every one of attrs (e.g.
// "dest=127.0.0.33").
func clientLines(s *served, msg string, attrs ...string) int {
	n := 0
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if strings.Contains(line, "msg="+strconv.Quote(msg)+" ") && strings.Contains(line, " remote="+clusterClient+" ") &&
			!slices.ContainsFunc(attrs, func(a string) bool { return !strings.Contains(line, " "+a+" ") }) {
			n++
		}
	}
	return n
}

// Two `skiff serve` nodes on one PostgreSQL and one storage folder behind a
// real HAProxy in TCP mode with PROXY protocol v2, as docs/OPERATIONS.md
// lays the deployment out. Through the balancer: logins land on both
// nodes, each node sees the client's own address, a file uploaded through
// one node is downloaded through the other, what support and an owner
// change through one node's API holds on the other (clusterControl:
// dedicated-IP routing and host keys, a session disconnect, SFTP turned
// off), and when the node serving a download is killed (SIGKILL) the
// client reconnects through the balancer, resumes the download on the
// other node, and the file arrives whole.
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
	env := append(nodesEnv(t), "SKIFF_PROXY_TRUSTED=127.0.0.1/32", "SKIFF_DEDICATED_IP_POOL="+clusterDedicated,
		"SKIFF_SFTP_SHARES_TTL="+clusterSharesTTL.String())
	if storage != nil {
		env = storage(env)
	}
	nodes := []*served{
		serveBinary(t, env, "--data-dir="+newDataDir(t), "--node-name=one"),
		serveBinary(t, env, "--data-dir="+newDataDir(t), "--node-name=two"),
	}
	front, dedicated := freeAddrOn(t, clusterFront), freeAddrOn(t, clusterDedicated)
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
frontend dedicated
  bind %s
  default_backend skiff
backend skiff
  balance roundrobin
  server one %s send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 2
  server two %s send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 2
`, front, dedicated, nodes[0].sftp, nodes[1].sftp))
	waitListening(t, front)
	waitListening(t, dedicated)

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
	// With -p both ways: the file's time, kept by the node it went through
	// (on S3, in the database), comes back through the other.
	written := time.Date(2021, 4, 5, 6, 7, 8, 0, time.UTC)
	if err := os.Chtimes(local, written, written); err != nil {
		t.Fatal(err)
	}
	if out, err := run(nil, "put -p "+local+" a.txt\n"); err != nil {
		t.Fatalf("upload through the balancer: %v\n%s", err, out)
	}
	back := filepath.Join(dir, "back.txt")
	if out, err := run(nil, "get -p a.txt "+back+"\n"); err != nil {
		t.Fatalf("download through the balancer: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(back); string(b) != "through the balancer\n" {
		t.Errorf("downloaded %q", b)
	}
	if fi, err := os.Stat(back); err != nil {
		t.Error(err)
	} else if !fi.ModTime().Equal(written) {
		t.Errorf("downloaded with -p through the other node: %v; want the time %v set through the first", fi.ModTime(), written)
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

	clusterControl(t, env, nodes, front, dedicated)

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

// clusterStaffPassword is the password of the cluster's support login.
const clusterStaffPassword = "support's long password"

// databaseEnv is the database setting of a node's environment, for `skiff admin`.
func databaseEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return !strings.HasPrefix(kv, "SKIFF_DATABASE_URL=") })
}

// sessionOf waits until the account's sessions list, read through api,
// shows the live session of login that started after since (the sessions
// the test ended before may still be listed for a moment), and returns its
// ID and node name.
func sessionOf(t *testing.T, api *server, token, login string, since time.Time) (id, node string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := api.gql(t, token, `{ account { sftpSessions { id login node startedAt } } }`, nil)
		list, _ := path(d, "account", "sftpSessions").([]any)
		var found []any
		for _, s := range list {
			started, err := time.Parse(time.RFC3339Nano, str(s, "startedAt"))
			if err != nil {
				t.Fatalf("a session's startedAt: %v", err)
			}
			if str(s, "login") == login && !started.Before(since) {
				found = append(found, s)
			}
		}
		if len(found) > 1 {
			t.Fatalf("more than one session of %s started since %v: %v", login, since, found)
		}
		if len(found) == 1 {
			return str(found[0], "id"), str(found[0], "node")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live session of %s in the sessions list: %v", login, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keyscan is the sorted SHA256 fingerprints of the host keys that
// OpenSSH's ssh-keyscan collects at addr, of every type Skiff offers.
func keyscan(t *testing.T, addr string) []string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("ssh-keyscan", "-T", "10", "-p", port, "-t", "ed25519,ecdsa,rsa", host).Output()
	if err != nil {
		t.Fatalf("ssh-keyscan %s: %v\n%s", addr, err, out)
	}
	var fps []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(f[1] + " " + f[2]))
		if err != nil {
			t.Fatalf("ssh-keyscan %s: %q: %v", addr, line, err)
		}
		fps = append(fps, ssh.FingerprintSHA256(key))
	}
	return sorted(fps)
}

// sorted is a sorted copy of s.
func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// closesWithin checks that the client sees its connection close within
// limit of since, when what was asked, and returns how long it took.
func (l *liveSFTP) closesWithin(t *testing.T, since time.Time, limit time.Duration, what string) time.Duration {
	t.Helper()
	select {
	case <-l.closed:
		return time.Since(since)
	case <-time.After(limit - time.Since(since)):
		t.Errorf("%s: still connected %v after %s", l.name, limit, what)
		return limit
	}
}

// clusterSharesTTL is how long the cluster's sessions trust their copy of
// their shared folders without a notification (the hidden
// --sftp-shares-ttl; 1 s by default): long enough that only the policy
// notification can explain a share removal reaching the other node's
// session within clusterSharesWithin.
const clusterSharesTTL = time.Minute

// clusterSharesWithin bounds the wait for a share removed through one node
// to be refused to the session on the other. It takes tens of
// milliseconds on loopback; the bound is far above that, so that a loaded
// 2-core machine does not fail the test, and far below clusterSharesTTL,
// so that it still proves the notification.
const clusterSharesWithin = 10 * time.Second

// clusterControl checks, through the balancer, that what support and an
// account's admins change through one node's GraphQL API holds on the other
// node: support provisions a dedicated IP (the balancer's second frontend)
// through node one, and a custom login on it reaches the account's files
// with the account's own host key on both nodes, while the shared frontend
// presents the deployment's keys and refuses the custom login. A session
// disconnect and turning a user's SFTP off, each asked of the node that
// does not hold the session, end that session within about a second, and
// the user cannot log in again through either node. A folder share removed
// the same way is refused to the open session within moments, by the
// policy notification (clusterSharesTTL rules out the sessions' cache).
func clusterControl(t *testing.T, env []string, nodes []*served, front, dedicated string) {
	// The first support login is made with `skiff admin create-staff`, as docs/OPERATIONS.md says.
	if r := runSkiff(t, databaseEnv(env), "admin", "create-staff", "--email=support@skiff.example", "--name=Support",
		"--password="+clusterStaffPassword); r.code != 0 {
		t.Fatalf("create-staff: exit %d\n%s", r.code, r.stderr)
	}
	api := []*server{{http: nodes[0].http}, {http: nodes[1].http}}
	byName := map[string]int{"one": 0, "two": 1}
	staff := api[0].login(t, "support@skiff.example", clusterStaffPassword)
	owners := []string{api[0].login(t, "boss@acme.example", acmePassword), api[1].login(t, "boss@acme.example", acmePassword)}
	acme := str(api[1].gql(t, owners[1], `{ account { id } }`, nil), "account", "id")

	// Support provisions the balancer's second address through node one.
	d := api[0].gql(t, staff, `mutation($a: ID!, $ip: String) { provisionDedicatedIp(input: {accountId: $a, address: $ip}) {
		dedicatedIp { address hostKeyFingerprints { fingerprint } } userErrors { message } } }`, map[string]any{"a": acme, "ip": clusterDedicated})
	keys := fingerprintsIn(path(d, "provisionDedicatedIp", "dedicatedIp", "hostKeyFingerprints"))
	if str(d, "provisionDedicatedIp", "dedicatedIp", "address") != clusterDedicated || len(keys) == 0 {
		t.Fatalf("provisioning %s: %v", clusterDedicated, d)
	}
	shared := fingerprintsIn(path(api[1].gql(t, owners[1], `{ sftpServer { hostKeyFingerprints { fingerprint } } }`, nil),
		"sftpServer", "hostKeyFingerprints"))
	if len(shared) == 0 || slices.ContainsFunc(keys, func(k string) bool { return slices.Contains(shared, k) }) {
		t.Fatalf("host keys: the dedicated IP's %v, the deployment's %v", keys, shared)
	}
	// The owner, through node two, gives Alice the custom login "backup".
	d = api[1].gql(t, owners[1], `mutation($e: String!, $p: String!) { createUser(input: {email: $e, name: "Alice", password: $p,
		sftpEnabled: true, customSftpLogin: "backup"}) { user { id sftp { credentials { customLogin dedicatedHost } } } userErrors { message } } }`,
		map[string]any{"e": "alice@acme.example", "p": alicePass})
	alice := str(d, "createUser", "user", "id")
	if alice == "" || str(d, "createUser", "user", "sftp", "credentials", "dedicatedHost") != clusterDedicated {
		t.Fatalf("creating Alice: %v", d)
	}

	// Through the dedicated frontend, round robin puts Alice's logins on
	// both nodes; each routes by the address in the PROXY header and
	// presents the account's key. The shared frontend does not know "backup".
	local := filepath.Join(t.TempDir(), "alice.txt")
	if err := os.WriteFile(local, []byte("Alice's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := sftpRunWith(t, dedicated, "backup", "", alicePass, []string{"-o", "BindAddress=" + clusterClient}, "put "+local+" alice.txt\n"); err != nil {
		t.Fatalf("Alice's upload through the dedicated frontend: %v\n%s", err, out)
	}
	for i := range 3 {
		seen, err := goLogin(t, clusterClient, dedicated, nil, "backup", alicePass)
		if err != nil || !slices.Equal(seen.files, []string{"alice.txt"}) {
			t.Errorf("login %d through the dedicated frontend: %+v, %v; want only alice.txt", i+1, seen, err)
		}
		if !slices.Contains(keys, seen.hostKey) {
			t.Errorf("login %d through the dedicated frontend: host key %s is not the account's %v", i+1, seen.hostKey, keys)
		}
	}
	for i, n := range nodes {
		if got := clientLines(n, "sftp login", "dest="+clusterDedicated); got < 1 {
			t.Errorf("node %d logged %d logins to %s, want at least one (round robin)", i+1, got, clusterDedicated)
		}
	}
	// What ssh-keyscan collects through each frontend, every key type (each
	// a connection of its own, so from both nodes): all the account's keys
	// on the dedicated IP, all the deployment's on the shared address.
	for _, tt := range []struct {
		name, addr string
		want       []string
	}{{"the dedicated frontend", dedicated, keys}, {"the shared frontend", front, shared}} {
		if got := keyscan(t, tt.addr); !slices.Equal(got, sorted(tt.want)) {
			t.Errorf("ssh-keyscan through %s: %v, want %v", tt.name, got, sorted(tt.want))
		}
	}
	for range 2 {
		if seen, err := goLogin(t, clusterClient, front, nil, "backup", alicePass); err == nil {
			t.Errorf("the custom login got in through the shared frontend: %+v", seen)
		} else if !slices.Contains(shared, seen.hostKey) {
			t.Errorf("the shared frontend presents %s, not the deployment's %v", seen.hostKey, shared)
		}
	}

	// A project folder shared with Alice, and her session open on it.
	d = api[1].gql(t, owners[1], `mutation { createProjectFolder(input: {name: "Ledger"}) { projectFolder { id } userErrors { message } } }`, nil)
	folder := str(d, "createProjectFolder", "projectFolder", "id")
	d = api[1].gql(t, owners[1], `mutation($f: ID!, $u: ID!) { shareProjectFolder(input: {folderId: $f, userId: $u, preset: READ}) {
		projectFolder { id } userErrors { message } } }`, map[string]any{"f": folder, "u": alice})
	if folder == "" || str(d, "shareProjectFolder", "projectFolder", "id") != folder {
		t.Fatalf("sharing a folder with Alice: %v", d)
	}
	const ledger = "/Projects Shared With Me/Ledger"
	opened := time.Now()
	live := openLive(t, "Alice's session through the balancer", clusterClient, dedicated, nil, "backup", alicePass)
	if _, err := live.sftp.ReadDir(ledger); err != nil {
		t.Fatalf("Alice's session lists %s: %v", ledger, err)
	}
	id, holder := sessionOf(t, api[0], owners[0], "backup", opened)
	other, ok := byName[holder]
	if !ok {
		t.Fatalf("the session is on node %q", holder)
	}
	other = 1 - other

	// Her rights on it removed through the node that does not hold the
	// session: the node holding it hears of it (the skiff_policy
	// notification) and her next operation there is refused, although the
	// session's copy of her shared folders would serve for a minute.
	asked := time.Now()
	d = api[other].gql(t, owners[other], `mutation($f: ID!, $u: ID!) { unshareProjectFolder(input: {folderId: $f, userId: $u}) {
		projectFolder { id } userErrors { message } } }`, map[string]any{"f": folder, "u": alice})
	if str(d, "unshareProjectFolder", "projectFolder", "id") != folder {
		t.Fatalf("unshareProjectFolder: %v", d)
	}
	for {
		_, err := live.sftp.ReadDir(ledger)
		if err != nil {
			t.Logf("removing Alice's share through node %d reached her session on node %s in %v (%v)", other+1, holder, time.Since(asked), err)
			break
		}
		if time.Since(asked) > clusterSharesWithin {
			t.Fatalf("Alice's session on node %s still lists %s %v after her share was removed through node %d", holder, ledger, clusterSharesWithin, other+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	live.works(t)

	// A disconnect asked of the node that does not hold the session.
	asked = time.Now()
	d = api[other].gql(t, owners[other], `mutation($id: ID!) { disconnectSftpSession(input: {id: $id}) { session { id } userErrors { message } } }`,
		map[string]any{"id": id})
	if str(d, "disconnectSftpSession", "session", "id") != id {
		t.Fatalf("disconnectSftpSession: %v", d)
	}
	took := live.closesWithin(t, asked, 2*time.Second, "disconnectSftpSession")
	t.Logf("a disconnect asked of node %d ended the session on node %s in %v", other+1, holder, took)

	// Alice's SFTP turned off through the node that does not hold her new session.
	opened = time.Now()
	live = openLive(t, "Alice's second session through the balancer", clusterClient, dedicated, nil, "backup", alicePass)
	_, holder = sessionOf(t, api[1], owners[1], "backup", opened)
	other = 1 - byName[holder]
	asked = time.Now()
	d = api[other].gql(t, owners[other], `mutation($u: ID!) { setSftpAccess(input: {userId: $u, enabled: false}) { userErrors { message } } }`,
		map[string]any{"u": alice})
	if msgs, _ := path(d, "setSftpAccess", "userErrors").([]any); len(msgs) > 0 {
		t.Fatalf("setSftpAccess: %v", d)
	}
	took = live.closesWithin(t, asked, 2*time.Second, "setSftpAccess off")
	t.Logf("turning SFTP off through node %d ended the session on node %s in %v", other+1, holder, took)
	// Logins are refused on both nodes (round robin alternates them, unless
	// a health check has just marked a node down on a busy machine).
	refused := func(i int) int {
		return clientLines(nodes[i], "sftp login refused", "dest="+clusterDedicated, "login=backup")
	}
	before := []int{refused(0), refused(1)}
	for i := 0; refused(0) == before[0] || refused(1) == before[1]; i++ {
		if i == 6 {
			t.Fatalf("after SFTP was turned off, 6 logins were refused %d times by node 1 and %d by node 2, want both",
				refused(0)-before[0], refused(1)-before[1])
		}
		if seen, err := goLogin(t, clusterClient, dedicated, nil, "backup", alicePass); err == nil {
			t.Errorf("login %d after SFTP was turned off got in: %+v", i+1, seen)
		}
	}
}
