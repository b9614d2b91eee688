package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/tenant"
)

// loginStats is the outcome of a login load.
type loginStats struct {
	ok, failed int
	latencies  []time.Duration
	elapsed    time.Duration
	serverCPU  time.Duration
	kex        string
	firstErr   error
}

func (s loginStats) rate() float64 { return float64(s.ok) / s.elapsed.Seconds() }

func (s loginStats) cpuPerLogin() time.Duration {
	if s.ok == 0 {
		return 0
	}
	return s.serverCPU / time.Duration(s.ok)
}

// sftpLogin connects, authenticates, opens a session channel, starts the
// sftp subsystem and completes the SFTP version exchange: everything a real
// client does before its first file operation. The caller closes the
// returned client (which closes the SFTP client too).
func sftpLogin(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*ssh.Client, *pkgsftp.Client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	client := ssh.NewClient(c, chans, reqs)
	sc, err := pkgsftp.NewClient(client)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return client, sc, nil
}

func negotiatedKex(c *ssh.Client) string {
	if m, ok := c.Conn.(ssh.AlgorithmsConnMetadata); ok {
		return m.Algorithms().KeyExchange
	}
	return ""
}

// loginLoad runs clients goroutines that log in and open an SFTP session
// back to back for dur, and measures the server's CPU over the run.
func loginLoad(ctx context.Context, addr string, cfg *ssh.ClientConfig, pid int, forks bool, clients int, dur time.Duration) (loginStats, error) {
	cpu0, err := processCPU(pid)
	if err != nil {
		return loginStats{}, err
	}
	var mu sync.Mutex
	var st loginStats
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				client, sc, err := sftpLogin(ctx, addr, cfg)
				lat := time.Since(t0)
				mu.Lock()
				if err != nil {
					st.failed++
					if st.firstErr == nil {
						st.firstErr = err
					}
				} else {
					st.ok++
					st.latencies = append(st.latencies, lat)
					if st.kex == "" {
						st.kex = negotiatedKex(client)
					}
				}
				mu.Unlock()
				if err == nil {
					sc.Close()
					client.Close()
				}
			}
		})
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	if forks && !waitNoDescendants(pid, 10*time.Second) {
		return st, errors.New("sshd children still running after the login load")
	}
	if !forks {
		time.Sleep(20 * time.Millisecond)
	}
	cpu1, err := processCPU(pid)
	if err != nil {
		return st, err
	}
	st.serverCPU = cpu1 - cpu0
	if st.ok == 0 {
		return st, fmt.Errorf("no login succeeded: %w", st.firstErr)
	}
	return st, nil
}

func (r *runner) clientConfig(user string, auth ssh.AuthMethod, hostKey ssh.PublicKey) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{auth},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
		Timeout:         30 * time.Second,
	}
}

func (r *runner) sshdHostKey() (ssh.PublicKey, error) {
	return readPublicKey(r.sshdDir + "/sshd_host_ed25519_key.pub")
}

func (r *runner) logins(ctx context.Context) error {
	signer, err := loadSigner(r.clientKey)
	if err != nil {
		return err
	}
	sec := r.report.section(fmt.Sprintf("Public-key logins with an SFTP session: %d concurrent x/crypto/ssh clients, %s",
		r.cfg.LoginClients, r.cfg.LoginDuration),
		"server", "logins/s", "p50", "p99", "server CPU / login", "PostgreSQL CPU / login", "failures", "key exchange")
	type result struct {
		name  string
		st    loginStats
		pgCPU time.Duration
		pgTx  float64 // PostgreSQL transactions per login
	}
	var results []result

	rs, err := r.startRealStack(ctx)
	switch {
	case r.skipWithoutPostgreSQL(err):
	case err != nil:
		return err
	default:
		// The client's default key exchange (ML-KEM hybrid for x/crypto),
		// then the one OpenSSH 9.2's client and the sshd baseline agree on.
		for _, v := range []struct {
			name string
			kex  []string
		}{
			{serveRow, nil},
			{"Skiff: skiff serve, PostgreSQL directory; client offers only curve25519-sha256, like OpenSSH 9.2", []string{curve25519}},
		} {
			cfg := rs.clientConfig(ssh.PublicKeys(signer))
			cfg.KeyExchanges = v.kex
			pg0, tx0 := treeCPU(rs.pgPID), r.db.transactions(ctx)
			st, err := loginLoad(ctx, rs.addr, cfg, rs.proc.pid(), false, r.cfg.LoginClients, r.cfg.LoginDuration)
			if err != nil {
				return fmt.Errorf("skiff serve: %w", err)
			}
			results = append(results, result{v.name, st, treeCPU(rs.pgPID) - pg0,
				float64(r.db.transactions(ctx)-tx0) / float64(st.ok)})
		}
		if r.cfg.ProfileDir != "" {
			if err := r.profileRealStack(ctx, signer); err != nil {
				return err
			}
		}
	}

	cfg := r.clientConfig(BenchLogin, ssh.PublicKeys(signer), r.skiff.hostKey)
	if r.cfg.ProfileDir != "" {
		// Profile an extra, uncounted load: profiling costs a little.
		if err := r.skiff.profile("cpu-start", filepath.Join(r.cfg.ProfileDir, "cpu-logins.pprof")); err != nil {
			return err
		}
		st, err := loginLoad(ctx, r.skiff.addr, cfg, r.skiff.proc.pid(), false, r.cfg.LoginClients, r.cfg.LoginDuration)
		r.log.Info("profiled the data-path server", "logins", st.ok, "cpu_per_login", ms(st.cpuPerLogin()))
		if perr := r.skiff.profile("cpu-stop", ""); err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
	}
	st, err := loginLoad(ctx, r.skiff.addr, cfg, r.skiff.proc.pid(), false, r.cfg.LoginClients, r.cfg.LoginDuration)
	if err != nil {
		return fmt.Errorf("data-path server: %w", err)
	}
	results = append(results, result{"Skiff: data-path server, in-memory directory", st, 0, 0})

	if r.sshd != nil {
		hk, err := r.sshdHostKey()
		if err != nil {
			return err
		}
		cfg := r.clientConfig(r.sshd.user, ssh.PublicKeys(signer), hk)
		st, err := loginLoad(ctx, r.sshd.addr, cfg, r.sshd.proc.pid(), true, r.cfg.LoginClients, r.cfg.LoginDuration)
		if err != nil {
			return fmt.Errorf("OpenSSH: %w", err)
		}
		results = append(results, result{openSSH, st, 0, 0})
	}
	for _, x := range results {
		pg := "–"
		if x.pgCPU > 0 {
			pg = fmt.Sprintf("%s (%.1f transactions)", ms(x.pgCPU/time.Duration(x.st.ok)), x.pgTx)
		}
		sec.row(x.name, fmt.Sprintf("%.0f", x.st.rate()), ms(percentile(x.st.latencies, 50)), ms(percentile(x.st.latencies, 99)),
			ms(x.st.cpuPerLogin()), pg, fmt.Sprint(x.st.failed), x.st.kex)
		r.log.Info("logins", "server", x.name, "per_s", fmt.Sprintf("%.0f", x.st.rate()), "ok", x.st.ok, "failed", x.st.failed)
		if x.st.firstErr != nil {
			r.log.Warn("a login failed", "server", x.name, "err", x.st.firstErr)
		}
	}
	note := "Latency runs from TCP connect to the SFTP version reply. Server CPU is the SSH server process's; " +
		"for skiff serve, PostgreSQL's processes are counted apart."
	rate := map[string]float64{}
	for _, x := range results {
		rate[x.name] = x.st.rate()
	}
	if rate[serveRow] > 0 && rate[openSSH] > 0 {
		note = fmt.Sprintf("skiff serve / OpenSSH login rate: %s. ", ratio(rate[serveRow], rate[openSSH])) + note
	}
	sec.note("%s", note)
	return nil
}

// serveRow names the logins table's row for skiff serve with the client's
// default key exchange.
const serveRow = "Skiff: skiff serve, PostgreSQL directory"

// curve25519 is the key exchange OpenSSH 9.2's client picks with Skiff and
// with sshd: it offers no ML-KEM.
const curve25519 = "curve25519-sha256"

// profileRealStack writes a CPU profile of skiff serve under the login load
// (cpu-logins-serve.pprof in Config.ProfileDir): a fresh process started with
// --cpu-profile, an extra, uncounted load, then a stop, which writes the
// profile. The next benchmark starts skiff serve again without it.
func (r *runner) profileRealStack(ctx context.Context, signer ssh.Signer) error {
	dir, err := filepath.Abs(r.cfg.ProfileDir)
	if err != nil {
		return err
	}
	r.stopRealStack()
	rs, err := r.startRealStack(ctx, "--cpu-profile", filepath.Join(dir, "cpu-logins-serve.pprof"))
	if err != nil {
		return err
	}
	defer r.stopRealStack()
	st, err := loginLoad(ctx, rs.addr, rs.clientConfig(ssh.PublicKeys(signer)), rs.proc.pid(), false, r.cfg.LoginClients, r.cfg.LoginDuration)
	// The count turns the profile's totals into time per login.
	r.log.Info("profiled skiff serve", "logins", st.ok, "cpu_per_login", ms(st.cpuPerLogin()))
	return err
}

// passwords measures password logins, which spend most of their time in
// one argon2id verification on purpose, against the cost of that
// verification alone; then a burst of concurrent attempts, for memory.
func (r *runner) passwords(ctx context.Context) error {
	verify, params, err := argon2Cost(ctx, map[bool]int{true: 3, false: 20}[r.cfg.Smoke])
	if err != nil {
		return err
	}
	rs, err := r.startRealStack(ctx)
	if err != nil {
		return err
	}
	sec := r.report.section(fmt.Sprintf("Password logins with an SFTP session (skiff serve, PostgreSQL directory): %d concurrent clients, %s",
		r.cfg.LoginClients, r.cfg.PasswordDuration),
		"case", "logins/s", "p50", "p99", "server CPU / login", "÷ one argon2id", "peak RSS")
	st, err := loginLoad(ctx, rs.addr, rs.clientConfig(ssh.Password(r.password)), rs.proc.pid(), false, r.cfg.LoginClients, r.cfg.PasswordDuration)
	if err != nil {
		return fmt.Errorf("skiff serve: %w", err)
	}
	sec.row("steady load", fmt.Sprintf("%.1f", st.rate()), ms(percentile(st.latencies, 50)), ms(percentile(st.latencies, 99)),
		ms(st.cpuPerLogin()), fmt.Sprintf("%.2f×", float64(st.cpuPerLogin())/float64(verify)), "–")

	// A burst: every attempt at once, half of them with a wrong password.
	pid := rs.proc.pid()
	if err := resetPeakRSS(pid); err != nil {
		return err
	}
	base, err := currentRSS(pid)
	if err != nil {
		return err
	}
	cpu0, _ := processCPU(pid)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, refused, failed int
	var lat []time.Duration
	start := time.Now()
	for i := range r.cfg.BurstAttempts {
		wg.Go(func() {
			pw := r.password
			if i%2 == 1 {
				pw = "wrong " + pw
			}
			t0 := time.Now()
			client, sc, err := sftpLogin(ctx, rs.addr, rs.clientConfig(ssh.Password(pw)))
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, d)
			switch {
			case err == nil:
				ok++
				sc.Close()
				client.Close()
			case strings.Contains(err.Error(), "unable to authenticate"):
				refused++
			default:
				failed++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := processCPU(pid)
	peak, err := peakRSS(pid)
	if err != nil {
		return err
	}
	n := r.cfg.BurstAttempts
	sec.row(fmt.Sprintf("burst of %d at once (%d ok, %d refused, %d errors, %s)", n, ok, refused, failed, elapsed.Round(time.Millisecond)),
		fmt.Sprintf("%.1f", float64(n)/elapsed.Seconds()), ms(percentile(lat, 50)), ms(percentile(lat, 99)),
		ms((cpu1-cpu0)/time.Duration(n)), fmt.Sprintf("%.2f×", float64((cpu1-cpu0)/time.Duration(n))/float64(verify)),
		fmt.Sprintf("%s (+%s)", mib(peak), mib(peak-base)))
	if failed > 0 {
		return fmt.Errorf("%d of %d burst attempts failed other than by refusal", failed, n)
	}
	sec.note("argon2id parameters: %s; one verification alone costs %s of CPU here (median of single-threaded runs in "+
		"the load generator). \"÷ one argon2id\" is the server's CPU per login divided by that. Skiff bounds concurrent "+
		"argon2id computations, so the burst queues instead of allocating memory for every attempt at once.",
		params, ms(verify))
	return nil
}

// argon2Cost measures the CPU time of one tenant.VerifyPassword, the
// check every password login makes, and returns the hash's parameters.
func argon2Cost(ctx context.Context, n int) (time.Duration, string, error) {
	h, err := tenant.HashPassword(ctx, "benchmark password")
	if err != nil {
		return 0, "", err
	}
	var costs []time.Duration
	for range n {
		c0 := selfCPU()
		if _, err := tenant.VerifyPassword(ctx, h, "benchmark password"); err != nil {
			return 0, "", err
		}
		costs = append(costs, selfCPU()-c0)
	}
	// "$argon2id$v=19$m=19456,t=2,p=1$salt$key"
	params := h
	if f := strings.Split(h, "$"); len(f) == 6 {
		params = "argon2id " + f[2] + " " + f[3]
	}
	return median(costs), params, nil
}

// selfCPU is the CPU time of the load generator's process. While argon2Cost
// runs nothing else in it computes, so its deltas are VerifyPassword's.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
