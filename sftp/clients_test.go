package sftp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// Real clients' use of the checksum extension and commands.

// keyServer is a vfs test server where alice logs in with a key; it
// returns the private key file too.
func keyServer(t *testing.T) (ts *testServer, home, keyPath string) {
	t.Helper()
	keyPath, signer := writePrivateKey(t, t.TempDir())
	dir := &fakeDirectory{publicKey: keys(map[*sftplogin.Login]ssh.PublicKey{&alice: signer.PublicKey()})}
	ts, _, home, _ = vfsServer(t, dir, vfs.AllRights)
	return ts, home, keyPath
}

// rcloneRemote is the remote of docs/SFTP-USER-GUIDE.md (but for its
// known_hosts_file: the tests' host keys are new each time).
const rcloneRemote = `[skiff]
type = sftp
host = %HOST%
port = %PORT%
user = alice
key_file = %KEY%
shell_type = unix
md5sum_command = md5sum
sha1sum_command = sha1sum
encoding = Slash,Dot,Ctl,Del,InvalidUtf8
`

// rclone runs Debian's rclone with its own config file (never the user's)
// and returns its output.
func rclone(t *testing.T, conf string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "rclone", append([]string{"--config", conf}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(conf), "XDG_CONFIG_HOME="+filepath.Dir(conf), "XDG_CACHE_HOME="+filepath.Dir(conf))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rclone check compares hashes through the checksum commands, without
// downloading; with the user guide's remote it leaves the config file as
// it was, and a remote that lets rclone find the commands itself gets them
// written, not "none".
func TestRcloneCheck(t *testing.T) {
	if _, err := exec.LookPath("rclone"); err != nil {
		t.Skip("rclone not installed (Debian package rclone)")
	}
	ts, home, keyPath := keyServer(t)
	host, port, _ := net.SplitHostPort(ts.addr)
	dir := t.TempDir()
	local := filepath.Join(dir, "local")
	for name, data := range map[string]string{
		"a.txt":            "alpha\n",
		"sub dir/b.bin":    strings.Repeat("beta", 50000),
		"sub dir/it's.txt": "quote",
		// A backslash is an ordinary character: no encoding needed.
		`sub dir/back\slash.txt`: "bs",
	} {
		p := filepath.Join(local, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	remote := strings.NewReplacer("%HOST%", host, "%PORT%", port, "%KEY%", keyPath).Replace(rcloneRemote)

	guide := filepath.Join(dir, "guide", "rclone.conf")
	if err := os.MkdirAll(filepath.Dir(guide), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(guide, []byte(remote), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := rclone(t, guide, "copy", local, "skiff:backup"); err != nil {
		t.Fatalf("rclone copy: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(home, "backup", "sub dir", `back\slash.txt`)); err != nil || string(got) != "bs" {
		t.Errorf("the file with a backslash in its name: %q, %v", got, err)
	}
	out, err := rclone(t, guide, "check", local, "skiff:backup")
	if err != nil || !strings.Contains(out, "0 differences found") || !strings.Contains(out, "4 matching files") ||
		strings.Contains(out, "hash") {
		t.Errorf("rclone check: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(guide); string(got) != remote {
		t.Errorf("rclone rewrote the config file:\n%s", got)
	}

	// Same size, other content: only a hash tells.
	if err := os.WriteFile(filepath.Join(home, "backup", "a.txt"), []byte("ALPHA\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	out, err = rclone(t, guide, "check", local, "skiff:backup")
	if err == nil || !strings.Contains(out, "1 differences found") {
		t.Errorf("rclone check after a same-size change: %v\n%s", err, out)
	}

	// A remote without the hash settings: rclone finds the commands.
	detect := filepath.Join(dir, "detect", "rclone.conf")
	if err := os.MkdirAll(filepath.Dir(detect), 0o700); err != nil {
		t.Fatal(err)
	}
	bare := strings.Join(strings.Split(remote, "\n")[:6], "\n") + "\n"
	if err := os.WriteFile(detect, []byte(bare), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = rclone(t, detect, "check", "--one-way", filepath.Join(local, "sub dir"), "skiff:backup/sub dir")
	if err != nil || !strings.Contains(out, "0 differences found") || strings.Contains(out, "hash") {
		t.Errorf("rclone check, commands detected: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(detect)
	if strings.Contains(string(got), "none") || !strings.Contains(string(got), "md5sum_command = md5sum") {
		t.Errorf("rclone wrote to the config:\n%s", got)
	}
}

// paramiko's SFTPFile.check() asks for hashes with the check-file
// extension.
func TestParamikoCheck(t *testing.T) {
	const python = "/usr/bin/python3" // Debian's, which python3-paramiko installs for
	if err := exec.Command(python, "-c", "import paramiko").Run(); err != nil {
		t.Skip("paramiko not installed for " + python + " (Debian package python3-paramiko)")
	}
	ts, home, keyPath := keyServer(t)
	host, port, _ := net.SplitHostPort(ts.addr)
	data := []byte(strings.Repeat("paramiko", 100000))
	if err := os.WriteFile(filepath.Join(home, "data.bin"), data, 0o640); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, paramiko
host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = paramiko.Transport((host, port))
t.connect(username="alice", pkey=paramiko.Ed25519Key.from_private_key_file(key))
s = paramiko.SFTPClient.from_transport(t)
f = s.open("data.bin")
print(f.check("sha256").hex())
print(f.check("md5", 0, 0, 256 * 1024).hex())
print(f.check("sha1", 100, 1000).hex())
t.close()
`
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", script, host, port, keyPath).CombinedOutput()
	if err != nil {
		t.Fatalf("paramiko: %v\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	whole := sha256.Sum256(data)
	if len(lines) != 3 || lines[0] != hex.EncodeToString(whole[:]) {
		t.Fatalf("paramiko check: %q; want the sha256 %x first", lines, whole)
	}
	if len(lines[1]) != 4*32 { // 800000 bytes in four blocks of 256 KiB
		t.Errorf("paramiko check by blocks: %q", lines[1])
	}
	if len(lines[2]) != 40 {
		t.Errorf("paramiko check of a range: %q", lines[2])
	}
}

// OpenSSH's ssh runs the checksum commands as the user guide shows, and
// gets a refusal and 127 for anything else.
func TestOpenSSHChecksumCommand(t *testing.T) {
	ts, home, keyPath := keyServer(t)
	if err := os.WriteFile(filepath.Join(home, "report x.pdf"), []byte("abc"), 0o640); err != nil {
		t.Fatal(err)
	}
	ssh := openSSH{key: keyPath}
	out, err := ssh.command(t, "ssh", ts.addr, "alice", "", "", "sha256sum", "'/My Files/report x.pdf'")
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  /My Files/report x.pdf\n"
	if err != nil || !strings.HasSuffix(out, want) {
		t.Errorf("ssh sha256sum: %v\n%s", err, out)
	}
	out, err = ssh.command(t, "ssh", ts.addr, "alice", "", "", "cat", "/etc/passwd")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 127 || !strings.Contains(out, "command not found") || strings.Contains(out, "root:") {
		t.Errorf("ssh cat /etc/passwd: %v\n%s", err, out)
	}
}
