package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/skiffhq/skiff/internal/testkit"
	"golang.org/x/crypto/ssh"
)

type syncBuffer = testkit.SyncBuffer

// server is one run of `skiff serve` inside the test process.
type server struct {
	http     string
	sftp     string   // the first SFTP address
	sftpAll  []string // every SFTP address, in --sftp-addr order
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// startServe runs `skiff serve` on dataDir with test-sized settings, changed
// further by the options, until the test ends.
func startServe(t *testing.T, dataDir string, options ...func(*ServeCmd)) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct {
		http string
		sftp []string
	}
	ready := make(chan addrs, 1)
	cmd := testServeCmd(t, dataDir)
	cmd.ready = func(h string, s []string) { ready <- addrs{h, s} }
	for _, o := range options {
		o(cmd)
	}
	s := &server{cancel: cancel, done: make(chan error, 1)}
	// The server's log is shown only if the test fails.
	var logBuf syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logBuf.String())
		}
	})
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	go func() { s.done <- cmd.Run(ctx, log) }()
	select {
	case a := <-ready:
		s.http, s.sftp, s.sftpAll = a.http, a.sftp[0], a.sftp
	case err := <-s.done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("serve did not come up")
	}
	t.Cleanup(s.stop)
	return s
}

// testServeCmd is `skiff serve` on dataDir with test-sized settings.
func testServeCmd(t *testing.T, dataDir string) *ServeCmd {
	return &ServeCmd{
		DatabaseFlags: DatabaseFlags{DataDir: dataDir},
		Runtime:       RuntimeDatabaseFlags{MaxConns: 32, MaxIdleConns: 32},
		HTTP: HTTPFlags{
			Addr: "127.0.0.1:0", Playground: "auto", Introspection: "auto",
			MaxBodyBytes: 1 << 20, MaxComplexity: 10000, MaxDepth: 12, TokenTTL: time.Hour, AccessTTL: 15 * time.Minute,
			MaxTokens: 10000, MaxSelections: 100, MaxFields: 2000, MaxResponse: 8 << 20,
			ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: time.Minute, Idle: time.Minute,
			MaxConns: 100, MaxPerAddr: 32, MaxSubs: 16,
		},
		SFTP: SFTPFlags{
			Addrs: []string{"127.0.0.1:0"}, IdleTimeout: time.Minute,
			MaxConns: 100, MaxConnsPerIP: 20, TrialLicences: 2,
			Handshake: 30 * time.Second, MaxAuthTries: 6, MaxSessions: 10,
			SessionsEvery: 2 * time.Second, SessionsTTL: 10 * time.Second,
			Resources: parseServe(t).SFTP.Resources, // the defaults
		},
		Mail: MailFlags{PublicURL: "http://localhost:3000"},
		Demo: true, ShutdownGrace: 5 * time.Second,
		// No container, whatever the machine's cgroup says: the Go
		// runtime's memory limit is the process's, which tests share.
		CgroupRoot: t.TempDir(),
	}
}

// stop ends the server and waits for it; the test may stop it early, the
// cleanup stops it again.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		<-s.done
	})
}

type gqlResult struct {
	Data   map[string]any
	Errors []map[string]any
}

func (s *server) gql(t *testing.T, token, query string, vars map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.http+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r gqlResult
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("GraphQL errors: %v\nquery: %s", r.Errors, query)
	}
	return r.Data
}

// path digs into decoded JSON: path(m, "login", "token").
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string { s, _ := path(v, keys...).(string); return s }

func (s *server) login(t *testing.T, email, password string) string {
	t.Helper()
	const login = `mutation($e: String!, $p: String!, $c: String) { login(input: {email: $e, password: $p, totpCode: $c}) {
		token totpEnrolmentRequired userErrors { code message } } }`
	key := t.Name() + "|" + email
	code := ""
	recoveryMu.Lock()
	if codes := recoveryCodes[key]; len(codes) > 0 { // two-factor is on: the next recovery code
		code, recoveryCodes[key] = codes[0], codes[1:]
	}
	recoveryMu.Unlock()
	d := s.gql(t, "", login, map[string]any{"e": email, "p": password, "c": code})
	tok := str(d, "login", "token")
	if tok == "" {
		t.Fatalf("login %s: %v", email, d)
	}
	if path(d, "login", "totpEnrolmentRequired") != true {
		return tok
	}
	// Two-factor is required (staff): enrol, then log in with a recovery code.
	d = s.gql(t, tok, `mutation { startTotpEnrolment { secret } }`, nil)
	now, err := totp.GenerateCode(str(d, "startTotpEnrolment", "secret"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d = s.gql(t, tok, `mutation($c: String!) { confirmTotpEnrolment(input: {code: $c}) { recoveryCodes } }`, map[string]any{"c": now})
	var codes []string
	for _, c := range path(d, "confirmTotpEnrolment", "recoveryCodes").([]any) {
		codes = append(codes, c.(string))
	}
	recoveryMu.Lock()
	recoveryCodes[key] = codes
	recoveryMu.Unlock()
	return s.login(t, email, password)
}

// recoveryCodes are the unused recovery codes of the staff logins enrolled by
// server.login, by test and email.
var (
	recoveryMu    sync.Mutex
	recoveryCodes = map[string][]string{}
)

// sftpRun runs the OpenSSH sftp client with commands on standard input.
func sftpRun(t *testing.T, addr, login, keyFile, password, commands string) (string, error) {
	t.Helper()
	return sftpRunWith(t, addr, login, keyFile, password, nil, commands)
}

// sftpRunWith is sftpRun with more of sftp's options (e.g. -l, -o BindAddress=).
func sftpRunWith(t *testing.T, addr, login, keyFile, password string, options []string, commands string) (string, error) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	args := append([]string{"-P", port, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"}, options...)
	env := os.Environ()
	if keyFile != "" {
		args = append(args, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", keyFile, "-o", "PreferredAuthentications=publickey")
	} else {
		askpass := filepath.Join(dir, "askpass")
		if err := os.WriteFile(askpass, []byte("#!/bin/sh\nprintf '%s\\n' \"$SKIFF_TEST_PASSWORD\"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1")
		env = append(env, "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none", "SKIFF_TEST_PASSWORD="+password)
	}
	args = append(args, login+"@"+host)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sftp", args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdin = strings.NewReader(commands)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The README's tour, from a fresh data folder: the demo account in TRIAL, an
// owner enabling SFTP for a user over GraphQL, the credentials email, logins
// with a key and a password through OpenSSH's sftp, support activating the
// module and changing licences, and a restart that keeps everything.
func TestServeTour(t *testing.T) {
	s, dl, dataDir := startDemo(t)
	owner := s.login(t, dl.OwnerEmail, dl.OwnerPassword)
	d := s.gql(t, owner, `{ account { sftpModule { status } sftpLicences { available } } }`, nil)
	if str(d, "account", "sftpModule", "status") != "TRIAL" {
		t.Fatalf("demo account module = %v", d)
	}

	// The owner got SFTP with the trial: the trial email carries their login
	// and the served host key, and the owner's password logs them in.
	if dl.OwnerSFTPLogin == "" {
		t.Fatal("the demo file has no SFTP login for the owner")
	}
	trialMail := waitForMail(t, filepath.Join(dataDir, "mail"), dl.OwnerSFTPLogin)
	if !strings.Contains(trialMail, "trial") || !strings.Contains(trialMail, servedHostKey(t, s.sftp)) || strings.Contains(trialMail, dl.OwnerPassword) {
		t.Fatalf("the owner's trial email:\n%s", trialMail)
	}
	if out, err := sftpRun(t, s.sftp, dl.OwnerSFTPLogin, "", dl.OwnerPassword, "pwd\n"); err != nil || !strings.Contains(out, "/My Files") {
		t.Fatalf("the owner's sftp with the login from the trial email: %v\n%s", err, out)
	}

	// Create a user with SFTP on, and a key for them.
	const alicePassword = "alice's long password"
	d = s.gql(t, owner, `mutation($p: String!) { createUser(input: {email: "alice@demo.example", name: "Alice", password: $p, sftpEnabled: true}) {
		user { id sftp { enabled credentials { login host port hostKeyFingerprints { fingerprint } } } } userErrors { field message } } }`,
		map[string]any{"p": alicePassword})
	aliceID := str(d, "createUser", "user", "id")
	login := str(d, "createUser", "user", "sftp", "credentials", "login")
	if aliceID == "" || login == "" {
		t.Fatalf("createUser: %v", d)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(keyFile + ".pub")
	d = s.gql(t, owner, `mutation($u: ID!, $k: String!) { addSshKey(input: {userId: $u, title: "laptop", publicKey: $k}) { sshKey { fingerprint } userErrors { message } } }`,
		map[string]any{"u": aliceID, "k": string(pub)})
	if !strings.HasPrefix(str(d, "addSshKey", "sshKey", "fingerprint"), "SHA256:") {
		t.Fatalf("addSshKey: %v", d)
	}

	// The credentials email: it names the login and never a password.
	mail := waitForMail(t, filepath.Join(dataDir, "mail"), login)
	if strings.Contains(mail, alicePassword) || !strings.Contains(mail, "alice@demo.example") {
		t.Fatalf("credentials email is wrong:\n%s", mail)
	}

	// Key login: upload, list, download.
	local := filepath.Join(t.TempDir(), "report.csv")
	os.WriteFile(local, []byte("q1,q2\n10,20\n"), 0o600)
	back := filepath.Join(t.TempDir(), "back.csv")
	out, err := sftpRun(t, s.sftp, login, keyFile, "", "put "+local+" report.csv\nls -1\nget report.csv "+back+"\n")
	if err != nil || !strings.Contains(out, "report.csv") {
		t.Fatalf("sftp with key: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(back); string(b) != "q1,q2\n10,20\n" {
		t.Fatalf("downloaded %q", b)
	}
	// Password login sees the same file; a wrong password does not get in.
	if out, err := sftpRun(t, s.sftp, login, "", alicePassword, "ls -1\n"); err != nil || !strings.Contains(out, "report.csv") {
		t.Fatalf("sftp with password: %v\n%s", err, out)
	}
	if out, err := sftpRun(t, s.sftp, login, "", "wrong password!", "ls -1\n"); err == nil {
		t.Fatalf("wrong password got in:\n%s", out)
	}

	// Support activates the module and lowers the licences below use.
	staff := s.login(t, dl.StaffEmail, dl.StaffPassword)
	d = s.gql(t, owner, `{ account { id } }`, nil)
	accountID := str(d, "account", "id")
	d = s.gql(t, staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 10}) { account { sftpModule { status } } licences { purchased used } } }`,
		map[string]any{"a": accountID})
	if str(d, "activateSftpModule", "account", "sftpModule", "status") != "ACTIVE" {
		t.Fatalf("activate: %v", d)
	}
	d = s.gql(t, staff, `mutation($a: ID!) { setSftpLicences(input: {accountId: $a, licences: 0}) { warning licences { purchased used available } } }`,
		map[string]any{"a": accountID})
	if str(d, "setSftpLicences", "warning") == "" {
		t.Fatalf("no warning when licences drop below use: %v", d)
	}

	// A restart reuses the data folder: same logins, same host key, no second
	// demo account, files kept.
	hostKey := servedHostKey(t, s.sftp)
	d = s.gql(t, owner, `{ sftpServer { hostKeyFingerprints { fingerprint } } }`, nil)
	if !strings.Contains(fmt.Sprint(d), hostKey) {
		t.Fatalf("the served host key %s is not among sftpServer's fingerprints %v", hostKey, d)
	}
	s.stop()
	s = startServe(t, dataDir)
	if again := servedHostKey(t, s.sftp); again != hostKey {
		t.Fatalf("host key changed across a restart: %s, then %s", hostKey, again)
	}
	staff = s.login(t, dl.StaffEmail, dl.StaffPassword)
	d = s.gql(t, staff, `{ accounts { edges { node { name } } } }`, nil)
	if n := len(path(d, "accounts", "edges").([]any)); n != 1 {
		t.Fatalf("after restart there are %d accounts", n)
	}
	if out, err := sftpRun(t, s.sftp, login, keyFile, "", "ls -1\n"); err != nil || !strings.Contains(out, "report.csv") {
		t.Fatalf("after restart: %v\n%s", err, out)
	}
}

// servedHostKey is the SHA256 fingerprint of the host key the SFTP server
// at addr presents (what a client would pin on first connection).
func servedHostKey(t *testing.T, addr string) string {
	t.Helper()
	var fp string
	cfg := &ssh.ClientConfig{
		User: "nobody",
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			fp = ssh.FingerprintSHA256(key)
			return nil
		},
		Timeout: 30 * time.Second,
	}
	if c, err := ssh.Dial("tcp", addr, cfg); err == nil { // no credentials: expected to fail after the key exchange
		c.Close()
	}
	if fp == "" {
		t.Fatalf("no host key seen at %s", addr)
	}
	return fp
}

// startDemo starts `skiff serve` on a fresh data folder, with its private
// PostgreSQL and demo account, and returns it with the demo's logins and the
// data folder. Tests that need it drive the OpenSSH sftp client, so they are
// skipped where it is missing.
func startDemo(t *testing.T, options ...func(*ServeCmd)) (*server, demoLogins, string) {
	t.Helper()
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Skip("the OpenSSH sftp client is not installed")
	}
	dataDir := newDataDir(t)
	s := startServe(t, dataDir, options...)
	dl, err := readDemoLogins(filepath.Join(dataDir, demoFile))
	if err != nil {
		t.Fatal(err)
	}
	return s, *dl, dataDir
}

// newDataDir is a fresh data folder that the private PostgreSQL, which runs
// as another user when the tests run as root, can pass through to.
func newDataDir(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(base, "data")
}

// waitForMail returns the first .eml file in dir that contains want.
func waitForMail(t *testing.T, dir, want string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), want) {
				return string(b)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no email containing %q in %s", want, dir)
	return ""
}
