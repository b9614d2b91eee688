package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/pgserver"
	"github.com/skiffhq/skiff/tenant"
)

// realStack is "skiff serve" on the benchmark database: the SSH listener
// with the PostgreSQL-backed directory and the real per-user sessions, as
// deployed.
type realStack struct {
	proc     *process
	addr     string // SFTP
	login    string // the benchmark user's SFTP login ID
	password string
	pgPID    int // PostgreSQL's postmaster, for its share of the CPU

	mu      sync.Mutex
	hostKey ssh.PublicKey // pinned on first contact
}

// skiffBinary builds cmd/skiff into the work directory, unless
// Config.SkiffBinary names one.
func (r *runner) skiffBinary(ctx context.Context) (string, error) {
	if r.cfg.SkiffBinary != "" {
		return r.cfg.SkiffBinary, nil
	}
	// Not in the work directory: /dev/shm is usually mounted noexec.
	dir, err := os.MkdirTemp("", "skiffbench-bin-")
	if err != nil {
		return "", err
	}
	r.cleanup = append(r.cleanup, func() { os.RemoveAll(dir) })
	out := filepath.Join(dir, "skiff")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/skiffhq/skiff/cmd/skiff")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build skiff (run the suite from inside the repository, or pass -skiff-binary): %v\n%s", err, b)
	}
	r.log.Info("built skiff", "took", time.Since(start).Round(time.Millisecond))
	return out, nil
}

// startRealStack creates an active account with one user who has SFTP on, a
// password and the suite's client key, and starts "skiff serve" on it, with
// extra arguments if any (e.g. --cpu-profile).
func (r *runner) startRealStack(ctx context.Context, extra ...string) (*realStack, error) {
	if r.real != nil {
		return r.real, nil
	}
	bin, err := r.skiffBinary(ctx)
	if err != nil {
		return nil, err
	}
	db, err := r.startDatabase(ctx)
	if err != nil {
		return nil, err
	}
	pub, err := readPublicKey(r.authorized)
	if err != nil {
		return nil, err
	}
	hash, err := tenant.HashPassword(ctx, r.password)
	if err != nil {
		return nil, err
	}
	const account, user, login = "5e1f0b6e-0000-4000-8000-0000000a0001", "5e1f0b6e-0000-4000-8000-0000000a0002", "benchlogin"
	// Rows as the services would leave them after "turn SFTP on" and "add
	// key"; written directly so the suite does not depend on those flows.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO accounts (id, name, sftp_status, sftp_licences) VALUES ($1, 'Login bench', 'ACTIVE', 10)
		  ON CONFLICT DO NOTHING`, []any{account}},
		{`INSERT INTO users (id, account_id, email, name, role, password_hash, sftp_enabled, sftp_enabled_at)
		  VALUES ($1, $2, 'login@bench.example', 'Login Bench', 'USER', $3, true, now()) ON CONFLICT DO NOTHING`,
			[]any{user, account, hash}},
		{`INSERT INTO sftp_credentials (user_id, account_id, login) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			[]any{user, account, login}},
		{`INSERT INTO ssh_keys (account_id, user_id, title, algorithm, bits, fingerprint, public_key)
		  VALUES ($1, $2, 'bench', $3, 256, $4, $5) ON CONFLICT DO NOTHING`,
			[]any{account, user, pub.Type(), ssh.FingerprintSHA256(pub), pub.Marshal()}},
	} {
		if _, err := db.admin.ExecContext(ctx, q.sql, q.args...); err != nil {
			return nil, fmt.Errorf("login benchmark data: %w", err)
		}
	}
	runtimeURL, err := db.runtimeURL(ctx)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(r.work, "skiff-serve")
	args := append([]string{"serve",
		"--database-url", runtimeURL, "--migrate-database-url", db.url, "--data-dir", data, "--no-demo",
		"--smtp-url", "file://" + filepath.Join(data, "mail"),
		"--http-addr", "127.0.0.1:0", "--sftp-addr", "127.0.0.1:0",
		"--sftp-max-connections-per-address=20000", "--sftp-max-connections=20000",
		// The idle benchmark holds its thousand sessions as one user.
		"--sftp-max-connections-per-user=20000", "--sftp-max-connections-per-account=20000",
		"--sftp-max-channels-per-user=20000", "--sftp-max-channels-per-account=20000"}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	proc, err := startProcess(cmd, filepath.Join(r.work, "skiff-serve.log"))
	if err != nil {
		return nil, fmt.Errorf("start skiff serve: %w", err)
	}
	rs := &realStack{proc: proc, login: login, password: r.password, pgPID: postmasterPID(db)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "SFTP:"); ok {
				select {
				case addr <- strings.TrimSpace(v):
				default:
				}
			}
		}
	}()
	select {
	case rs.addr = <-addr:
	case <-proc.exited:
		log, _ := os.ReadFile(filepath.Join(r.work, "skiff-serve.log"))
		return nil, fmt.Errorf("skiff serve exited:\n%s", lastLines(string(log), 20))
	case <-time.After(60 * time.Second):
		proc.stop()
		return nil, errors.New("skiff serve did not print its SFTP address within 60s")
	}
	if err := waitSSH(ctx, rs.addr, 10*time.Second); err != nil {
		proc.stop()
		return nil, err
	}
	r.real = rs
	return rs, nil
}

// clientConfig trusts the host key the server shows first and pins it:
// the deployment's keys are generated at its first start.
func (rs *realStack) clientConfig(auth ssh.AuthMethod) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User: rs.login,
		Auth: []ssh.AuthMethod{auth},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if rs.hostKey == nil {
				rs.hostKey = key
				return nil
			}
			return ssh.FixedHostKey(rs.hostKey)("", nil, key)
		},
		Timeout: 30 * time.Second,
	}
}

// stopRealStack stops "skiff serve"; the next startRealStack starts a
// fresh process on the same data.
func (r *runner) stopRealStack() {
	if r.real != nil {
		r.real.proc.stop()
		r.real = nil
	}
}

// postmasterPID reads the server's PID from its lock file; 0 if unknown.
func postmasterPID(db *benchDatabase) int {
	b, err := os.ReadFile(filepath.Join(db.dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// treeCPU is the CPU time of pid, its reaped children, and its live
// descendants: for PostgreSQL, the postmaster and its backends.
func treeCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	total := time.Duration(0)
	for _, p := range append(descendants(pid), pid) {
		if st, err := readProcStat(p); err == nil {
			total += st.cpu
		}
	}
	return total
}

// skipWithoutPostgreSQL reports whether err is PostgreSQL missing in a smoke
// run, which then goes on without the benchmarks that need it.
func (r *runner) skipWithoutPostgreSQL(err error) bool {
	if r.cfg.Smoke && errors.Is(err, pgserver.ErrNotInstalled) {
		r.log.Warn("smoke run without PostgreSQL: the real-stack rows are skipped", "err", err)
		return true
	}
	return false
}
