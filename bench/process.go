package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// process is a server the benchmarks started and measure.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	stdin  io.Closer // closing it tells a Skiff server its driver is gone
}

// startProcess starts cmd with its output appended to logPath.
func startProcess(cmd *exec.Cmd, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	cmd.Stderr = logf
	// A process group of its own, so that a terminal's Ctrl-C reaches the
	// driver, which then stops its servers in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks the process to end and kills it if it has not within a few
// seconds.
func (p *process) stop() {
	if p.stdin != nil {
		p.stdin.Close()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// skiffServer is a running data-path server (RunServer) or, later, a
// "skiff serve".
type skiffServer struct {
	variant string
	proc    *process
	addr    string
	pprof   string // host:port of the profiling endpoint, if any
	hostKey ssh.PublicKey
}

// startSkiffServer runs the data-path server with args and waits for its
// LISTEN line.
func startSkiffServer(ctx context.Context, command func(args ...string) *exec.Cmd, logPath string, args ...string) (*skiffServer, error) {
	cmd := command(args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	proc, err := startProcess(cmd, logPath)
	if err != nil {
		return nil, fmt.Errorf("start Skiff server: %w", err)
	}
	proc.stdin = stdin
	s := &skiffServer{proc: proc}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(30 * time.Second)
	for s.addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				proc.stop()
				log, _ := os.ReadFile(logPath)
				return nil, fmt.Errorf("the Skiff server exited before listening:\n%s", log)
			}
			switch key, val, _ := strings.Cut(line, " "); key {
			case "LISTEN":
				s.addr = val
			case "PPROF":
				s.pprof = val
			case "HOSTKEY":
				if s.hostKey, _, _, _, err = ssh.ParseAuthorizedKey([]byte(val)); err != nil {
					proc.stop()
					return nil, fmt.Errorf("host key of the Skiff server: %w", err)
				}
			}
		case <-timeout:
			proc.stop()
			return nil, errors.New("the Skiff server did not start listening within 30s")
		case <-ctx.Done():
			proc.stop()
			return nil, ctx.Err()
		}
	}
	// Keep draining stdout so the server never blocks writing to it.
	go func() {
		for range lines {
		}
	}()
	return s, nil
}

// profile asks the server to start (start=true) or stop writing a CPU
// profile to path, or to write a heap profile when kind is "heap".
func (s *skiffServer) profile(kind, path string) error {
	if s.pprof == "" {
		return errors.New("server has no profiling endpoint")
	}
	resp, err := http.Post("http://"+s.pprof+"/bench/"+kind+"?path="+url.QueryEscape(path), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("profile %s: %s: %s", kind, resp.Status, b)
	}
	return nil
}
