package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	sftpclient "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
)

// process is one run of the skiff binary.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	http   string
	sftp   string
	exited chan error
}

var (
	jsonGraphQL = regexp.MustCompile(`"graphql":"(http://[^"]+)/graphql"`)
	jsonSFTP    = regexp.MustCompile(`"sftp":\["([^"]+)"`)
)

// startSkiff starts `skiff <args>` with no SKIFF_* variable but env, and
// waits for its start banner (on stdout, or with JSON logs on stderr).
func startSkiff(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(skiffBinary(t), args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SKIFF_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &process{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("skiff's log:\n%s", p.stderr.String())
		}
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(2 * time.Minute)
	for p.http == "" || p.sftp == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			if m := bannerGraphQL.FindStringSubmatch(l); m != nil {
				p.http = m[1]
			}
			if m := bannerSFTP.FindStringSubmatch(l); m != nil {
				p.sftp = m[1]
			}
		case <-time.After(100 * time.Millisecond):
			log := p.stderr.String()
			if m := jsonGraphQL.FindStringSubmatch(log); m != nil {
				p.http = m[1]
			}
			if m := jsonSFTP.FindStringSubmatch(log); m != nil {
				p.sftp = m[1]
			}
		case err := <-p.exited:
			t.Fatalf("skiff exited before it was ready: %v", err)
		case <-deadline:
			t.Fatal("skiff did not start")
		}
	}
	go func() {
		for range lines { // keep stdout drained
		}
	}()
	return p
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// exitsWithin waits for the process to end and checks its exit code is 0.
func (p *process) exitsWithin(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("skiff exited with %v", err)
		}
	case <-time.After(limit):
		t.Fatalf("skiff still running %v after the signal", limit)
	}
	return time.Since(start)
}

// sftpConn is a logged-in Go SFTP client.
type sftpConn struct {
	*sftpclient.Client
	closed chan struct{}
}

func dialSFTP(t *testing.T, addr, login, password string) (*sftpConn, error) {
	t.Helper()
	client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: login, Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { client.Close() })
	sc, err := sftpclient.NewClient(client)
	if err != nil {
		return nil, err
	}
	c := &sftpConn{Client: sc, closed: make(chan struct{})}
	go func() {
		client.Wait()
		close(c.closed)
	}()
	if _, err := sc.ReadDir("/My Files"); err != nil {
		return nil, err
	}
	return c, nil
}

func mustDialSFTP(t *testing.T, addr, login, password string) *sftpConn {
	t.Helper()
	c, err := dialSFTP(t, addr, login, password)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *sftpConn) isClosedWithin(limit time.Duration) bool {
	select {
	case <-c.closed:
		return true
	case <-time.After(limit):
		return false
	}
}

// demoSFTPLogin starts nothing: it reads the demo owner's SFTP login from a
// data folder a first start wrote.
func demoSFTPLogin(t *testing.T, dataDir string) (string, string) {
	t.Helper()
	dl, err := readDemoLogins(filepath.Join(dataDir, demoFile))
	if err != nil {
		t.Fatal(err)
	}
	if dl.OwnerSFTPLogin == "" {
		t.Fatal("the demo has no SFTP login")
	}
	return dl.OwnerSFTPLogin, dl.OwnerPassword
}

// SIGHUP is logged and ignored. On SIGTERM, /readyz fails at once, new API
// requests get a GraphQL 503, an idle SFTP session closes at once, an
// upload finishing within the grace period completes, and one still
// running at its end is cut and logged; then the process exits 0. A second
// run with only an idle session, in JSON logs, exits at once, its banner
// and log lines all JSON.
func TestServeSignals(t *testing.T) {
	dataDir := newDataDir(t)
	p := startSkiff(t, nil, "serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0",
		"--sftp-addr", "127.0.0.1:0", "--shutdown-grace", "4s")
	login, password := demoSFTPLogin(t, dataDir)

	p.signal(t, syscall.SIGHUP)
	testkit.Eventually(t, "the SIGHUP log line", func() bool { return strings.Contains(p.stderr.String(), "SIGHUP ignored") })
	if res, err := http.Get(p.http + "/readyz"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("after SIGHUP, /readyz: %v %v", res, err)
	}

	idle := mustDialSFTP(t, p.sftp, login, password)
	short := mustDialSFTP(t, p.sftp, login, password)
	shortFile, err := short.Create("/My Files/short.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shortFile.Write([]byte("first half,")); err != nil {
		t.Fatal(err)
	}
	long := mustDialSFTP(t, p.sftp, login, password)
	longFile, err := long.Create("/My Files/long.bin")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 32<<10)
	if _, err := longFile.Write(chunk); err != nil {
		t.Fatal(err)
	}
	longDone := make(chan struct{})
	go func() { // a slow client: a chunk every 100 ms until cut
		defer close(longDone)
		for {
			if _, err := longFile.Write(chunk); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	p.signal(t, syscall.SIGTERM)
	testkit.Eventually(t, "/readyz to fail", func() bool {
		res, err := http.Get(p.http + "/readyz")
		if err != nil {
			t.Fatalf("/readyz unreachable while draining: %v", err)
		}
		res.Body.Close()
		return res.StatusCode == http.StatusServiceUnavailable
	})
	res, err := http.Post(p.http+"/graphql", "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body gqlResult
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || len(body.Errors) != 1 || path(body.Errors[0], "extensions", "code") != "SHUTTING_DOWN" {
		t.Errorf("API request while draining: %s %v", res.Status, body)
	}
	if !idle.isClosedWithin(2 * time.Second) {
		t.Error("the idle SFTP session is still open 2s after SIGTERM")
	}
	if _, err := net.DialTimeout("tcp", p.sftp, time.Second); err == nil {
		t.Error("the SFTP port still accepts connections while draining")
	}
	if _, err := shortFile.Write([]byte(" second half")); err != nil {
		t.Errorf("short upload cut: %v", err)
	}
	if err := shortFile.Close(); err != nil {
		t.Errorf("short upload not completed: %v", err)
	}
	if !short.isClosedWithin(2 * time.Second) {
		t.Error("the session whose upload ended is still open 2s later")
	}
	took := p.exitsWithin(t, 20*time.Second)
	<-longDone
	if took < 2*time.Second {
		t.Errorf("exited %v after SIGTERM, before the 4s grace was over for the long upload", took)
	}
	cut := regexp.MustCompile(`msg="sftp transfer cut at shutdown" session=[0-9a-f]+ .*user=\S+ path="/My Files/long.bin" upload=true bytes=\d{5,}`)
	if !cut.MatchString(p.stderr.String()) {
		t.Errorf("no log line for the cut upload with its session, user, path and bytes")
	}

	// Again, with only an idle session and a long grace: it exits at once.
	p = startSkiff(t, nil, "--log-format", "json", "serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0",
		"--sftp-addr", "127.0.0.1:0", "--shutdown-grace", "1m")
	idle = mustDialSFTP(t, p.sftp, login, password)
	if _, err := idle.Stat("/My Files/short.txt"); err != nil {
		t.Errorf("the upload completed during the drain is missing: %v", err)
	}
	p.signal(t, syscall.SIGTERM)
	// Well within the grace (a minute), with room for a loaded machine.
	if took := p.exitsWithin(t, 30*time.Second); took > 20*time.Second {
		t.Errorf("an idle session held shutdown for %v", took)
	}
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
	if !strings.Contains(p.stderr.String(), `"msg":"Skiff is running"`) {
		t.Error("no JSON start banner")
	}
	// A clean stop says nothing alarming: a warning or an error from the
	// shutdown would send an operator looking for a fault.
	_, stopping, _ := strings.Cut(p.stderr.String(), `"msg":"shutting down`)
	for line := range strings.Lines(stopping) {
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("a clean shutdown logged: %s", line)
		}
	}
}
