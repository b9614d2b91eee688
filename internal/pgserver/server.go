// Package pgserver runs a private PostgreSQL server from the programs
// installed on the machine: for `skiff serve` without a database URL, and for
// tests.
//
// The server listens on 127.0.0.1 and on a Unix socket inside its data
// directory, and trusts every connection it accepts: anyone who can reach
// 127.0.0.1 on this machine can connect as the superuser. That suits a
// developer machine or a test, not a shared host; production uses a real
// server through SKIFF_DATABASE_URL.
package pgserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/lib/pq" // the readiness probe connects like any client
)

// Superuser is the PostgreSQL superuser a new data directory gets.
const Superuser = "skiff"

const (
	logName    = "server.log"
	maxLogSize = 8 << 20 // at start, a longer log moves to server.log.1
	// startTimeout covers crash recovery after an unclean stop, which can
	// take a while on a slow disk.
	startTimeout = 2 * time.Minute
	stopTimeout  = time.Minute
	// maxSocketDir keeps "<dir>/.s.PGSQL.<port>" within the 103 bytes a Unix
	// socket path may have on macOS and the BSDs (Linux allows 107).
	maxSocketDir = 88
)

// errPortInUse is why a start failed when another program holds the port.
var errPortInUse = errors.New("port in use")

// Options configure Start.
type Options struct {
	// DataDir holds the cluster. Start creates and initialises it on first
	// use and reuses it afterwards. Its parent folders must be reachable by
	// the user PostgreSQL runs as (see Start).
	DataDir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one at each start.
	Port int
	// Ephemeral trades durability for speed, for test data: nothing is
	// flushed to disk, so a machine crash can corrupt the cluster.
	Ephemeral bool
	// Binaries to run; nil finds them with FindBinaries, preferring the
	// version that created DataDir.
	Binaries *Binaries
	// Logger receives start-up and shutdown events; nil discards them. The
	// server's own log is the file server.log in DataDir.
	Logger *slog.Logger
}

// Server is a running PostgreSQL server started by Start.
type Server struct {
	dataDir    string
	sockDir    string
	ownSockDir bool // sockDir is a temporary folder, removed by Stop
	port       int
	logPath    string
	logFile    *os.File
	logStart   int64 // where this run's output begins in logPath
	log        *slog.Logger

	cmd     *exec.Cmd
	done    chan struct{} // closed when the server process has exited
	exitErr error         // how it exited; read only after done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start initialises opts.DataDir if it holds no cluster yet, starts
// PostgreSQL on it and returns once the server accepts connections.
//
// PostgreSQL refuses to run as root. When this process is root, the server
// runs as the owner of an existing data directory, or else as the "postgres"
// user (or "nobody"), who is given the data directory; Start fails with an
// explanation if that user cannot reach it, e.g. under /root.
//
// On Linux the server shuts down by itself if this process dies. Call Stop
// to stop it earlier. A failed start returns an error that quotes the end of
// the server's log.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("start PostgreSQL: no data directory given")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	acct, err := serverAccount(dataDir)
	if err != nil {
		return nil, err
	}
	major, err := clusterMajor(dataDir)
	if err != nil {
		return nil, err
	}
	var bins Binaries
	switch {
	case opts.Binaries == nil:
		if bins, err = findBinaries(os.Getenv("PATH"), installDirs, major); err != nil {
			return nil, err
		}
	case major != 0 && opts.Binaries.Major != major:
		return nil, fmt.Errorf("data directory %s was created by PostgreSQL %d, not %d: use that version, "+
			"or upgrade the data directory with pg_upgrade", dataDir, major, opts.Binaries.Major)
	default:
		bins = *opts.Binaries
	}
	if err := prepareDir(dataDir, acct); err != nil {
		return nil, err
	}
	if major == 0 {
		log.InfoContext(ctx, "creating PostgreSQL data directory", "dir", dataDir, "version", bins.Major)
		if err := initCluster(bins, dataDir, acct, opts.Ephemeral); err != nil {
			return nil, err
		}
	}

	clearStaleLock(dataDir)

	s := &Server{dataDir: dataDir, sockDir: dataDir, log: log, logPath: filepath.Join(dataDir, logName)}
	if len(dataDir) > maxSocketDir {
		if s.sockDir, err = os.MkdirTemp("", "skiff-pg-"); err != nil {
			return nil, fmt.Errorf("start PostgreSQL: socket folder: %w", err)
		}
		s.ownSockDir = true
		if err := acct.own(s.sockDir); err != nil {
			s.release()
			return nil, err
		}
	}
	if err := s.openLog(acct); err != nil {
		s.release()
		return nil, err
	}
	// A free port found now may be taken before PostgreSQL binds it; then
	// try another.
	for attempt := 1; ; attempt++ {
		err = s.launch(ctx, bins, acct, opts)
		if err == nil {
			log.InfoContext(ctx, "PostgreSQL ready", "dir", dataDir, "port", s.port, "version", bins.Major)
			return s, nil
		}
		if opts.Port != 0 || attempt == 3 || !errors.Is(err, errPortInUse) {
			s.release()
			return nil, err
		}
	}
}

// URL is a lib/pq connection URL for the superuser to database dbname.
func (s *Server) URL(dbname string) string { return s.RoleURL(Superuser, dbname) }

// RoleURL is a lib/pq connection URL for role to database dbname. The
// server trusts every connection, so no password is needed.
func (s *Server) RoleURL(role, dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(role),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the server listens on, on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// LogFile is the server's own log.
func (s *Server) LogFile() string { return s.logPath }

// Done is closed when the server process has exited, whether through Stop
// or not.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop shuts the server down quickly: open transactions are rolled back and
// clients disconnected. It waits for the server to exit. Calling it again
// returns the first call's result. It fails if the server had already
// exited by itself or had to be killed.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.shutdown()
		s.release()
		if s.stopErr == nil {
			s.log.Info("PostgreSQL stopped", "dir", s.dataDir)
		}
	})
	return s.stopErr
}

func (s *Server) shutdown() error {
	select {
	case <-s.done:
		return fmt.Errorf("PostgreSQL had already exited (%v); see %s", s.exitErr, s.logPath)
	default:
	}
	// SIGINT is PostgreSQL's "fast" shutdown.
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		_ = s.cmd.Process.Kill()
	}
	select {
	case <-s.done:
		if s.exitErr != nil {
			return fmt.Errorf("stop PostgreSQL: %v; see %s", s.exitErr, s.logPath)
		}
		return nil
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("PostgreSQL did not shut down within %v and was killed; see %s", stopTimeout, s.logPath)
	}
}

// release frees what Start acquired besides the process.
func (s *Server) release() {
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
	if s.ownSockDir {
		_ = os.RemoveAll(s.sockDir)
	}
}

// launch runs postgres once and waits until it serves.
func (s *Server) launch(ctx context.Context, bins Binaries, acct *account, opts Options) error {
	s.port = opts.Port
	if s.port == 0 {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("start PostgreSQL: find a free port: %w", err)
		}
		s.port = port
	} else if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return &startError{cause: errPortInUse, msg: fmt.Sprintf("start PostgreSQL: port %d on 127.0.0.1 is in use "+
				"(another PostgreSQL?): stop that program or choose another port", s.port)}
		}
		return fmt.Errorf("start PostgreSQL: port %d: %w", s.port, err)
	} else {
		_ = l.Close()
	}

	if off, err := s.logFile.Seek(0, io.SeekEnd); err == nil {
		s.logStart = off
	}
	s.cmd = exec.Command(bins.postgres(), serverArgs(s.dataDir, s.sockDir, s.port, opts.Ephemeral)...)
	s.cmd.Dir = s.dataDir
	s.cmd.Env = childEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.logFile, s.logFile
	s.cmd.SysProcAttr = acct.procAttr()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	cmd, done := s.cmd, make(chan struct{})
	s.done = done
	go func() {
		s.exitErr = cmd.Wait()
		close(done)
	}()
	if err := s.waitReady(ctx); err != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		return err
	}
	return nil
}

// waitReady polls until the server answers as the one on our data
// directory: if another server took the port, the answer comes from it.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	db, err := sql.Open("postgres", s.URL("postgres")+"&connect_timeout=5")
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer db.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return s.startFailure(fmt.Sprintf("the server exited (%v)", s.exitErr))
		default:
		}
		var dir string
		if err := db.QueryRowContext(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err == nil && dir == s.dataDir {
			return nil
		}
		select {
		case <-s.done:
			return s.startFailure(fmt.Sprintf("the server exited (%v)", s.exitErr))
		case <-ctx.Done():
			return s.startFailure(fmt.Sprintf("not ready: %v", ctx.Err()))
		case <-tick.C:
		}
	}
}

// startFailure explains a failed start with the end of the server's log.
func (s *Server) startFailure(what string) error {
	tail := s.logTail()
	var hint string
	var cause error
	switch {
	case strings.Contains(tail, "Address already in use"):
		hint = fmt.Sprintf("port %d on 127.0.0.1 is in use; stop the program using it or choose another port", s.port)
		cause = errPortInUse
	case strings.Contains(tail, `"postmaster.pid" already exists`):
		hint = fmt.Sprintf("another PostgreSQL seems to run on this data directory; stop it, or if none runs, remove %s",
			filepath.Join(s.dataDir, "postmaster.pid"))
	}
	msg := fmt.Sprintf("start PostgreSQL (data directory %s): %s", s.dataDir, what)
	if hint != "" {
		msg += ": " + hint
	}
	return &startError{msg: msg + fmt.Sprintf("\nend of %s:\n%s", s.logPath, tail), cause: cause}
}

// startError is a failed start; cause, if set, lets callers match it with
// errors.Is without repeating it in the message.
type startError struct {
	msg   string
	cause error
}

func (e *startError) Error() string { return e.msg }
func (e *startError) Unwrap() error { return e.cause }

func (s *Server) logTail() string { return tailLines(readFrom(s.logPath, s.logStart), 20) }

func readFrom(path string, off int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return b
}

func tailLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func (s *Server) openLog(acct *account) error {
	if fi, err := os.Stat(s.logPath); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(s.logPath, s.logPath+".1") // keeping the old log is a courtesy
	}
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start PostgreSQL: open log: %w", err)
	}
	s.logFile = f
	return acct.own(s.logPath)
}

func serverArgs(dataDir, sockDir string, port int, ephemeral bool) []string {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"port=" + strconv.Itoa(port),
		// Quoted: the setting is a comma-separated list of folders.
		`unix_socket_directories="` + strings.ReplaceAll(sockDir, `"`, `""`) + `"`,
		"unix_socket_permissions=0700",
		// Room for parallel tests and a few Skiff nodes, each with a pool.
		"max_connections=200",
		"shared_buffers=64MB",
	}
	if ephemeral {
		settings = append(settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off")
	}
	args := []string{"-D", dataDir}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	return args
}

// initCluster runs initdb. The UTF-8 "C" locale sorts by code point and
// lower-cases non-ASCII letters; systems without it get plain "C".
//
// initdb is not cancelled with ctx: killed half-way it would leave a broken
// cluster behind. It takes seconds, and if this process dies, the
// parent-death signal makes initdb remove what it wrote.
func initCluster(bins Binaries, dataDir string, acct *account, ephemeral bool) error {
	args := []string{"--pgdata", dataDir, "--username", Superuser, "--auth", "trust", "--encoding", "UTF8"}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	run := func(locale ...string) ([]byte, error) {
		cmd := exec.Command(bins.initdb(), append(args, locale...)...)
		cmd.Dir = dataDir
		cmd.Env = childEnv()
		cmd.SysProcAttr = acct.procAttr()
		return cmd.CombinedOutput()
	}
	out, err := run("--locale", "C.UTF-8")
	if err != nil && bytes.Contains(out, []byte("locale")) {
		out, err = run("--no-locale")
	}
	if err != nil {
		return fmt.Errorf("create PostgreSQL data directory %s: initdb: %v\n%s", dataDir, err, tailLines(out, 20))
	}
	return nil
}

// clusterMajor is the PostgreSQL version that created the cluster in dir, or
// 0 if dir is missing or empty.
func clusterMajor(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if err == nil {
		major, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("data directory %s: unreadable PG_VERSION %q", dir, b)
		}
		return major, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("data directory %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("data directory %s: %w", dir, err)
	case len(entries) > 0:
		return 0, fmt.Errorf("data directory %s is not empty and holds no PostgreSQL cluster: "+
			"choose an empty or new folder", dir)
	}
	return 0, nil
}

// clearStaleLock removes the postmaster.pid a crashed server left behind if
// its process id now belongs to a program other than PostgreSQL. PostgreSQL
// removes the file itself when the id is unused, but after a reboot or a
// container restart ids are often reused, and PostgreSQL then refuses to
// start. Where /proc is missing, PostgreSQL's own check is all there is.
func clearStaleLock(dataDir string) {
	lock := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(lock)
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return
	}
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err == nil && strings.TrimSpace(string(comm)) != "postgres" {
		_ = os.Remove(lock)
	}
}

// prepareDir creates dir for PostgreSQL: private to its user, under parents
// that user can walk through.
func prepareDir(dir string, acct *account) error {
	if err := acct.checkReachable(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create data directory: %w", err)
	}
	return acct.own(dir)
}

// childEnv is this process's environment without PG* variables, which would
// otherwise override what Start chose (PGDATA, PGPORT, PGOPTIONS...).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
