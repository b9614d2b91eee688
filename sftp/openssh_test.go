package sftp

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant/sftplogin"
	"golang.org/x/crypto/ssh"
)

// openSSH runs the OpenSSH sftp client against a server and returns its
// combined output and error: key set logs in with that private key in batch
// mode, otherwise with password through SSH_ASKPASS.
type openSSH struct {
	key      string // private key file for public-key login
	password string // answered by SSH_ASKPASS for password login
	verbose  bool
}

func (o openSSH) run(t *testing.T, addr, login string, batch ...string) (string, error) {
	t.Helper()
	return o.command(t, "sftp", addr, login, strings.Join(batch, "\n")+"\n")
}

// scp copies local to path on the server with OpenSSH's scp (which speaks
// SFTP since OpenSSH 9).
func (o openSSH) scp(t *testing.T, addr, login, local, path string) (string, error) {
	t.Helper()
	return o.command(t, "scp", addr, login, "", local, ":"+path)
}

// subsystem runs `ssh -s host sftp` with stdin as the SFTP stream.
func (o openSSH) subsystem(t *testing.T, addr, login, stdin string) (string, error) {
	t.Helper()
	return o.command(t, "ssh", addr, login, stdin, "-s", "", "sftp")
}

// command runs the OpenSSH client prog (sftp, scp or ssh) as login. For
// sftp, commands is its batch of commands; for the others it is standard
// input and rest are the arguments after the destination: one starting with
// ":" is appended to the destination (scp's remote path), "" puts the
// destination there instead (ssh's options before it).
func (o openSSH) command(t *testing.T, prog, addr, login, commands string, rest ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		t.Skipf("OpenSSH %s client not installed", prog)
	}
	dir := t.TempDir()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	portFlag := "-P"
	if prog == "ssh" {
		portFlag = "-p"
	}
	args := []string{
		"-F", "/dev/null", // ignore the machine's ssh_config
		portFlag, port,
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentityAgent=none",
		"-o", "ConnectTimeout=10",
	}
	if o.verbose {
		args = append(args, "-vvv")
	}
	env := append(os.Environ(), "HOME="+dir) // no ~/.ssh keys of the machine
	stdin := strings.NewReader(commands)
	if o.key != "" {
		if prog == "sftp" {
			batchFile := filepath.Join(dir, "batch")
			if err := os.WriteFile(batchFile, []byte(commands), 0o600); err != nil {
				t.Fatal(err)
			}
			args = append(args, "-b", batchFile)
			stdin = strings.NewReader("")
		}
		args = append(args, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", o.key,
			"-o", "PreferredAuthentications=publickey")
	} else {
		// sftp -b turns on BatchMode, which forbids passwords, so the
		// commands come on standard input instead; sftp exits non-zero
		// when it cannot log in either way.
		askpass := filepath.Join(dir, "askpass")
		script := "#!/bin/sh\nprintf '%s\\n' \"$SKIFF_TEST_PASSWORD\"\n"
		if err := os.WriteFile(askpass, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-o", "PubkeyAuthentication=no",
			"-o", "PreferredAuthentications=password,keyboard-interactive",
			"-o", "NumberOfPasswordPrompts=1")
		env = append(env, "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force",
			"DISPLAY=none", "SKIFF_TEST_PASSWORD="+o.password)
	}
	dest, placed := login+"@"+host, false
	for _, a := range rest {
		switch {
		case a == "":
			args, placed = append(args, dest), true
		case strings.HasPrefix(a, ":"):
			args, placed = append(args, dest+a), true
		default:
			args = append(args, a)
		}
	}
	if !placed {
		args = append(args, dest)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdin = stdin
	// A new session has no controlling terminal, so ssh cannot prompt on
	// one and must ask SSH_ASKPASS.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestOpenSSHKeyLogin(t *testing.T) {
	keyPath, signer := writePrivateKey(t, t.TempDir())
	dir := &fakeDirectory{publicKey: keys(map[*sftplogin.Login]ssh.PublicKey{&alice: signer.PublicKey()})}
	ts := newTestServer(t, dir, nil)

	local := filepath.Join(t.TempDir(), "report.csv")
	if err := os.WriteFile(local, []byte("a,b\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := openSSH{key: keyPath}.run(t, ts.addr, "alice", "put "+local+" uploaded.csv", "ls -1")
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if !strings.Contains(out, "uploaded.csv") {
		t.Errorf("ls output lacks the upload:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(ts.sessions.root, "uploaded.csv"))
	if err != nil || string(got) != "a,b\n1,2\n" {
		t.Errorf("uploaded file = %q, %v", got, err)
	}

	logins := ts.sessions.Logins()
	if len(logins) != 1 || logins[0].UserID != alice.UserID {
		t.Fatalf("sessions opened for %+v, want alice once", logins)
	}
	if want := ssh.FingerprintSHA256(signer.PublicKey()); logins[0].KeyFingerprint != want {
		t.Errorf("session login fingerprint %q, want %q", logins[0].KeyFingerprint, want)
	}
	for _, c := range dir.Calls() {
		if c.dest != netipMust("127.0.0.2") || c.remote != netipMust("127.0.0.1") {
			t.Errorf("directory called with dest %v remote %v, want 127.0.0.2 from 127.0.0.1", c.dest, c.remote)
		}
	}
	if len(dir.used) != 1 || dir.used[0] != testAccount+"/key-alice" {
		t.Errorf("key use recorded for %v, want alice's key once", dir.used)
	}
}

func TestOpenSSHPasswordLogin(t *testing.T) {
	dir := &fakeDirectory{password: passwords(alice)}
	ts := newTestServer(t, dir, nil)
	if err := os.WriteFile(filepath.Join(ts.sessions.root, "hello.txt"), []byte("hi"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := openSSH{password: testPassword}.run(t, ts.addr, "alice", "ls -1")
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if !strings.Contains(out, "hello.txt") {
		t.Errorf("ls output lacks hello.txt:\n%s", out)
	}
	if logins := ts.sessions.Logins(); len(logins) != 1 || logins[0].UserID != alice.UserID || logins[0].KeyFingerprint != "" {
		t.Errorf("sessions opened for %+v, want alice by password", logins)
	}
	if strings.Contains(ts.logs.String(), testPassword) {
		t.Error("the password appears in the server log")
	}
}

// Every refusal reads the same to the client, whatever the real reason.
func TestOpenSSHFailuresLookAlike(t *testing.T) {
	keyDir := t.TempDir()
	_, accepted := writePrivateKey(t, keyDir)
	strangerKey, _ := writePrivateKey(t, keyDir)
	dir := &fakeDirectory{
		password:  passwords(alice),
		publicKey: keys(map[*sftplogin.Login]ssh.PublicKey{&alice: accepted.PublicKey()}),
	}
	ts := newTestServer(t, dir, nil)

	cases := []struct {
		name  string
		login string
		auth  openSSH
	}{
		{"wrong password", "alice", openSSH{password: "wrong"}},
		{"unknown login", "mallory", openSSH{password: testPassword}},
		{"key not accepted", "alice", openSSH{key: strangerKey}},
		{"unknown login with key", "mallory", openSSH{key: strangerKey}},
	}
	var messages []string
	for _, tc := range cases {
		out, err := tc.auth.run(t, ts.addr, tc.login, "ls")
		if err == nil {
			t.Fatalf("%s: login succeeded:\n%s", tc.name, out)
		}
		i := strings.Index(out, "Permission denied")
		if i < 0 {
			t.Fatalf("%s: no \"Permission denied\" in:\n%s", tc.name, out)
		}
		msg, _, _ := strings.Cut(out[i:], "\n")
		messages = append(messages, msg)
	}
	for i, m := range messages {
		if m != messages[0] {
			t.Errorf("%s says %q, %s says %q", cases[i].name, m, cases[0].name, messages[0])
		}
	}
	if n := len(ts.sessions.Logins()); n != 0 {
		t.Errorf("%d sessions opened after failed logins", n)
	}
	logs := ts.logs.String()
	if strings.Contains(logs, "wrong") || strings.Contains(logs, testPassword) {
		t.Error("a password appears in the server log")
	}
	if !strings.Contains(logs, "bad login or password") || !strings.Contains(logs, "key not registered") {
		t.Errorf("server log lacks the real refusal reasons:\n%s", logs)
	}
}

// The OpenSSH client agrees on strict key exchange (the Terrapin fix) and
// on algorithms from the allowed lists.
func TestOpenSSHStrictKex(t *testing.T) {
	keyPath, signer := writePrivateKey(t, t.TempDir())
	dir := &fakeDirectory{publicKey: keys(map[*sftplogin.Login]ssh.PublicKey{&alice: signer.PublicKey()})}
	ts := newTestServer(t, dir, nil)
	out, err := openSSH{key: keyPath, verbose: true}.run(t, ts.addr, "alice", "pwd")
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Remote protocol version 2.0, remote software version Skiff") {
		t.Errorf("server version string not announced as Skiff")
	}
	offer := peerProposal(out)
	want := map[string]string{
		"KEX algorithms": "mlkem768x25519-sha256,curve25519-sha256,curve25519-sha256@libssh.org," +
			"ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,kex-strict-s-v00@openssh.com",
		"host key algorithms": "ssh-ed25519",
		"ciphers ctos":        strings.Join(DefaultAlgorithms().Ciphers, ","),
		"ciphers stoc":        strings.Join(DefaultAlgorithms().Ciphers, ","),
		"MACs ctos":           strings.Join(DefaultAlgorithms().MACs, ","),
		"MACs stoc":           strings.Join(DefaultAlgorithms().MACs, ","),
	}
	for label, w := range want {
		if offer[label] != w {
			t.Errorf("server offers %s %q, want %q", label, offer[label], w)
		}
	}
}

// peerProposal parses ssh -vvv's dump of the server's KEXINIT into label →
// comma-separated list.
func peerProposal(out string) map[string]string {
	offer := map[string]string{}
	_, peer, ok := strings.Cut(out, "peer server KEXINIT proposal")
	if !ok {
		return offer
	}
	for line := range strings.Lines(peer) {
		line = strings.TrimSpace(strings.TrimPrefix(line, "debug2: "))
		if label, value, ok := strings.Cut(line, ": "); ok {
			if _, seen := offer[label]; !seen {
				offer[label] = value
			}
		}
	}
	return offer
}
