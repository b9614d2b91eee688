package bench

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrNoSSHD is returned when OpenSSH's server is not installed. Its text is
// one line with no final full stop because findSSHD wraps it.
var ErrNoSSHD = errors.New("OpenSSH's sshd is not installed; the baseline needs it " +
	"(Debian/Ubuntu: apt-get install openssh-server; Fedora: dnf install openssh-server). " +
	"The suite never uses the system service: it starts its own sshd on a high loopback port " +
	"with its own configuration and host key, serving internal-sftp")

// findSSHD returns the absolute path of sshd, which sshd itself requires
// (it re-executes itself for every connection): configured if set, else
// from PATH or the usual places.
func findSSHD(configured string) (string, error) {
	if configured != "" {
		if fi, err := os.Stat(configured); err != nil || fi.IsDir() {
			return "", fmt.Errorf("%w (%s: not found)", ErrNoSSHD, configured)
		}
		return filepath.Abs(configured)
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return filepath.Abs(p)
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", ErrNoSSHD
}

// sshdVersion runs "sshd -V" (OpenSSH ≥ 9.1; older ones print usage and
// the version on a bad flag, which works too).
func sshdVersion(path string) string {
	out, _ := exec.Command(path, "-V").CombinedOutput()
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "OpenSSH") {
			return strings.TrimSpace(line)
		}
	}
	return "OpenSSH (version unknown)"
}

// sshdServer is a private sshd on loopback.
type sshdServer struct {
	proc    *process
	addr    string
	user    string
	version string
}

// startSSHD starts OpenSSH's sshd in the foreground on a free loopback port,
// with a configuration written into dir: its own host key, public-key
// authentication only with authorizedKeys, and the sftp subsystem served by
// internal-sftp, so no shell or helper binary runs per session. It logs in
// as the user running the benchmark.
func startSSHD(ctx context.Context, bin, dir, authorizedKeys string) (*sshdServer, error) {
	bin, err := findSSHD(bin)
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start as root without its privilege separation
		// directory, which the distribution's service unit normally
		// creates at boot.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("sshd privilege separation directory: %w", err)
		}
	}
	hostKey := filepath.Join(dir, "sshd_host_ed25519_key")
	if err := writePrivateKey(hostKey); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "sshd_config")
	conf := strings.Join([]string{
		"ListenAddress 127.0.0.1:" + strconv.Itoa(port),
		"HostKey " + hostKey,
		"PidFile none",
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"AuthorizedKeysFile " + authorizedKeys,
		// The key files live in a temporary directory that sshd's owner
		// and mode checks would refuse.
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"Subsystem sftp internal-sftp",
		// The login benchmark opens connections faster than the default
		// 10:30:100 would let through unauthenticated.
		"MaxStartups 200",
		"UseDNS no",
		"LogLevel ERROR",
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// Check the configuration first: its errors are clearer than a timeout.
	if out, err := exec.Command(bin, "-t", "-f", cfg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sshd -t: %v: %s", err, out)
	}
	logPath := filepath.Join(dir, "sshd.log")
	proc, err := startProcess(exec.Command(bin, "-D", "-e", "-f", cfg), logPath)
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	s := &sshdServer{proc: proc, addr: "127.0.0.1:" + strconv.Itoa(port), user: u.Username, version: sshdVersion(bin)}
	if err := waitSSH(ctx, s.addr, 10*time.Second); err != nil {
		proc.stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("sshd did not come up: %w\n%s", err, log)
	}
	return s, nil
}

// waitSSH waits until addr answers with an SSH version line.
func waitSSH(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "SSH-2.0-") {
				return nil
			}
			err = fmt.Errorf("no SSH banner: %q %v", line, rerr)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before sshd binds it; on this single-user benchmark machine that
// is unlikely, and sshd then fails loudly.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writePrivateKey writes a new Ed25519 key in OpenSSH format, readable only
// by its owner as ssh and sshd demand, with the public half next to it.
func writePrivateKey(path string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "skiffbench")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	return os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644)
}

// loadSigner reads a private key written by writePrivateKey.
func loadSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

// readPublicKey reads a key in authorized_keys format.
func readPublicKey(path string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	return k, err
}
