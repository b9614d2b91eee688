package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// idleBaselineSessions caps the OpenSSH side of the idle benchmark: sshd
// runs two processes per session, and a hundred sessions are enough to see
// the cost of one.
const idleBaselineSessions = 100

// idle measures the memory of authenticated SFTP sessions that do nothing.
func (r *runner) idle(ctx context.Context) error {
	// Fresh servers, so that heap freed by earlier benchmarks is not reused
	// by the sessions and hidden from the measurement.
	if err := r.startSkiff(ctx); err != nil {
		return err
	}
	signer, err := loadSigner(r.clientKey)
	if err != nil {
		return err
	}
	sec := r.report.section("Idle authenticated SFTP sessions",
		"server", "sessions", "memory before", "memory with sessions", "per session", "goroutines per session")
	n := r.cfg.IdleSessions
	row := func(name string, before, after int64, sessions int, goroutines string) {
		sec.row(name, fmt.Sprint(sessions), mib(before), mib(after), kib(float64(after-before)/float64(sessions)), goroutines)
		r.log.Info("idle", "server", name, "sessions", sessions, "per_session", kib(float64(after-before)/float64(sessions)), "goroutines", goroutines)
	}

	cfg := r.clientConfig(BenchLogin, ssh.PublicKeys(signer), r.skiff.hostKey)
	g0, gerr := goroutines(r.skiff.pprof)
	before, after, err := idleRSS(ctx, r.skiff.addr, cfg, r.skiff.proc.pid(), n)
	if err != nil {
		return fmt.Errorf("data-path server: %w", err)
	}
	// idleRSS closes its sessions as it returns: a second set is opened
	// for the count.
	perSession := "–"
	if gerr == nil {
		held, err := openSessions(ctx, r.skiff.addr, cfg, n)
		if err != nil {
			return fmt.Errorf("data-path server: %w", err)
		}
		time.Sleep(2 * time.Second)
		if g1, err := goroutines(r.skiff.pprof); err == nil {
			perSession = fmt.Sprintf("%.1f", float64(g1-g0)/float64(n))
		}
		held.close()
	}
	row("Skiff data-path server (RSS)", before, after, n, perSession)

	// skiff serve's sessions also hold the real directory's gate and
	// shares caches.
	r.stopRealStack()
	rs, err := r.startRealStack(ctx)
	switch {
	case r.skipWithoutPostgreSQL(err):
	case err != nil:
		return err
	default:
		before, after, err := idleRSS(ctx, rs.addr, rs.clientConfig(ssh.PublicKeys(signer)), rs.proc.pid(), n)
		if err != nil {
			return fmt.Errorf("skiff serve: %w", err)
		}
		row("Skiff: skiff serve (RSS)", before, after, n, "–")
	}

	if r.sshd != nil {
		hk, err := r.sshdHostKey()
		if err != nil {
			return err
		}
		spid := r.sshd.proc.pid()
		m := min(n, idleBaselineSessions)
		cfg := r.clientConfig(r.sshd.user, ssh.PublicKeys(signer), hk)
		before := treePSS(spid)
		held, err := openSessions(ctx, r.sshd.addr, cfg, m)
		if err != nil {
			return fmt.Errorf("OpenSSH: %w", err)
		}
		time.Sleep(time.Second)
		after := treePSS(spid)
		held.close()
		row("OpenSSH (PSS of the process tree)", before, after, m, "–")
	}
	sec.note("Each session is a separate SSH connection, authenticated with a public key, with the sftp subsystem " +
		"started and its version exchange done, then left idle. Skiff: growth of the server's resident set. " +
		"OpenSSH forks per connection, so its figure is the proportional set size (shared pages split between the " +
		"processes sharing them) summed over sshd's process tree.")
	return nil
}

// goroutines reads how many goroutines a server with a profiling endpoint
// runs.
func goroutines(pprofAddr string) (int, error) {
	if pprofAddr == "" {
		return 0, errors.New("no profiling endpoint")
	}
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	// "goroutine profile: total 42"
	_, total, ok := strings.Cut(strings.TrimSpace(line), "total ")
	if !ok {
		return 0, fmt.Errorf("goroutine profile starts %q", line)
	}
	return strconv.Atoi(total)
}

// idleRSS opens n idle sessions on a server process and returns its RSS
// before and with them.
func idleRSS(ctx context.Context, addr string, cfg *ssh.ClientConfig, pid, n int) (before, after int64, err error) {
	// One session first, so that what a server allocates once (the first
	// handshake's tables, the file tree's code paths) is not charged to the
	// sessions.
	warm, err := openSessions(ctx, addr, cfg, 1)
	if err != nil {
		return 0, 0, err
	}
	warm.close()
	time.Sleep(500 * time.Millisecond)
	if before, err = currentRSS(pid); err != nil {
		return 0, 0, err
	}
	held, err := openSessions(ctx, addr, cfg, n)
	if err != nil {
		return 0, 0, err
	}
	defer held.close()
	// Give the server's goroutines time to reach their idle state.
	time.Sleep(2 * time.Second)
	after, err = currentRSS(pid)
	return before, after, err
}

type heldSessions struct {
	mu      sync.Mutex
	clients []*ssh.Client
	sftps   []*pkgsftp.Client
}

func (h *heldSessions) close() {
	for i := range h.clients {
		h.sftps[i].Close()
		h.clients[i].Close()
	}
}

// openSessions opens n SFTP sessions, a few at a time, and keeps them.
func openSessions(ctx context.Context, addr string, cfg *ssh.ClientConfig, n int) (*heldSessions, error) {
	h := &heldSessions{}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var firstErr error
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, sc, err := sftpLogin(ctx, addr, cfg)
			h.mu.Lock()
			defer h.mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			h.clients = append(h.clients, c)
			h.sftps = append(h.sftps, sc)
		})
	}
	wg.Wait()
	if firstErr != nil {
		h.close()
		return nil, fmt.Errorf("opening %d idle sessions: %d failed, first: %w", n, n-len(h.clients), firstErr)
	}
	return h, nil
}

// treePSS sums the proportional set size of pid and its descendants.
func treePSS(pid int) int64 {
	total := int64(0)
	for _, p := range append(descendants(pid), pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					total += kb * 1024
				}
				break
			}
		}
	}
	return total
}
