package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	rpprof "runtime/pprof"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// The one account and user the data-path server serves. Storage wants
// UUIDs; these are fixed so that the driver knows where the user's home is.
const (
	BenchAccountID = "5e1f0b6e-0000-4000-8000-00000000be01"
	BenchUserID    = "5e1f0b6e-0000-4000-8000-00000000be02"
	BenchLogin     = "bench"

	// The hostile benchmark's attacker: a user of another account, who
	// logs in with the same keys.
	HostileAccountID = "5e1f0b6e-0000-4000-8000-00000000be03"
	HostileUserID    = "5e1f0b6e-0000-4000-8000-00000000be04"
	HostileLogin     = "hostile"
)

// RunServer is the data-path server: Skiff's real SSH listener (package sftp)
// and file tree (sftp/vfs on storage.Local), with an in-memory directory of
// one user in place of PostgreSQL. It runs as its own process so that its CPU
// time and memory can be read from /proc without counting the load
// generator. It prints "LISTEN <addr>" (and "PPROF <addr>" with -pprof) on
// stdout once it accepts connections, and serves until SIGTERM, SIGINT or
// the end of its standard input.
func RunServer(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "SSH listen address")
	data := fs.String("data", "", "storage base directory (required without -storage-url)")
	storageURL := fs.String("storage-url", "", "keep files in an S3 bucket instead: s3://bucket/prefix?endpoint=…&region=… (credentials from the AWS environment)")
	keyFile := fs.String("authorized-keys", "", "file of public keys (authorized_keys format) that may log in as "+BenchLogin)
	password := fs.String("password", "", "password that logs in as "+BenchLogin+" (hashed with Skiff's argon2id at start)")
	ciphers := fs.String("ciphers", "", "comma-separated ciphers to offer (default: Skiff's defaults)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:0)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (logs go to stderr)")
	watchStdin := fs.Bool("watch-stdin", true, "exit when standard input closes (the driver died)")
	replyMemory := fs.Int64("reply-memory", 256<<20, "process budget of queued SFTP replies in bytes (skiff serve's default)")
	replyPerConn := fs.Int64("reply-memory-per-connection", 8<<20, "one connection's share of it (skiff serve's default)")
	handlesPerConn := fs.Int("handles-per-connection", 1024, "open handles per connection (skiff serve's default)")
	handlesPerUser := fs.Int("handles-per-user", 2048, "open handles per user (skiff serve's default)")
	handlesPerAccount := fs.Int("handles-per-account", 8192, "open handles per account (skiff serve's default)")
	handles := fs.Int("handles", 0, "open handles in the process; 0: the open file limit less 1024")
	withMetrics := fs.Bool("metrics", false, "count Prometheus metrics as skiff serve --metrics-addr does (served at /metrics on the -pprof address)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" && *storageURL == "" {
		return errors.New("server: -data or -storage-url is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("server: -log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dir := &memDirectory{login: BenchLogin}
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		for len(bytes.TrimSpace(b)) > 0 {
			var k ssh.PublicKey
			k, _, _, b, err = ssh.ParseAuthorizedKey(b)
			if err != nil {
				return fmt.Errorf("server: %s: %w", *keyFile, err)
			}
			dir.keys = append(dir.keys, k.Marshal())
		}
	}
	if *password != "" {
		h, err := tenant.HashPassword(ctx, *password)
		if err != nil {
			return fmt.Errorf("server: hash password: %w", err)
		}
		dir.passwordHash = h
	}

	var store storage.Storage
	if *storageURL != "" {
		cfg, err := s3.ParseURL(*storageURL)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		if store, err = s3.Open(ctx, cfg); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	} else {
		local, err := storage.NewLocal(*data)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		defer local.Close()
		store = local
	}

	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		return err
	}
	var metrics *sftp.Metrics
	reg := prometheus.NewRegistry()
	if *withMetrics {
		metrics = sftp.NewMetrics(reg)
	}
	var offered []string
	if *ciphers != "" {
		offered = strings.Split(*ciphers, ",")
	}
	srv, err := sftp.NewServer(sftp.Config{
		ListenAddresses: []string{*listen},
		Directory:       dir,
		HostKeys:        staticHostKeys{signer},
		Sessions: &vfsSessions{store: store, log: log,
			handles: vfs.NewCounter("open files", vfs.Caps{PerConnection: *handlesPerConn, PerUser: *handlesPerUser,
				PerAccount: *handlesPerAccount, PerProcess: processHandles(*handles)}),
			replies: vfs.NewReplyBudget(*replyMemory, *replyPerConn), metrics: metrics.VFSMetrics()},
		Metrics: metrics,
		Logger:  log,
		Ciphers: offered,
		Limits: sftp.Limits{
			// Every benchmark client comes from 127.0.0.1, and the idle
			// benchmark holds a thousand connections.
			MaxConnections:           -1,
			MaxConnectionsPerAddress: -1,
			// One user holds them all.
			MaxConnectionsPerUser:    -1,
			MaxConnectionsPerAccount: -1,
			MaxChannelsPerUser:       -1,
			MaxChannelsPerAccount:    -1,
			MaxChannels:              -1,
		},
	})
	if err != nil {
		return err
	}
	if err := srv.Listen(ctx); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *watchStdin {
		ctx2, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
		ctx = ctx2
	}
	if *pprofAddr != "" {
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("server: pprof: %w", err)
		}
		h := profileHandler()
		if *withMetrics {
			mux := http.NewServeMux()
			mux.Handle("/", h)
			mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			h = mux
		}
		hs := &http.Server{Handler: h}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		fmt.Fprintf(stdout, "PPROF %s\n", ln.Addr())
	}
	fmt.Fprintf(stdout, "HOSTKEY %s", ssh.MarshalAuthorizedKey(signer.PublicKey()))
	fmt.Fprintf(stdout, "LISTEN %s\n", srv.Addrs()[0])
	err = srv.ListenAndServe(ctx)
	if errors.Is(err, sftp.ErrServerClosed) {
		return nil
	}
	return err
}

// memDirectory lets one login in with any of its keys or its password.
type memDirectory struct {
	login        string
	keys         [][]byte // wire-format public keys
	passwordHash string   // argon2id PHC string; empty: no password logins
}

var _ sftp.Directory = (*memDirectory)(nil)

// user is the Login of login, nil for an unknown one: the bench user, or
// the hostile benchmark's attacker.
func (d *memDirectory) user(login string) *sftplogin.Login {
	switch login {
	case d.login:
		return &sftplogin.Login{AccountID: BenchAccountID, UserID: BenchUserID, Login: d.login}
	case HostileLogin:
		return &sftplogin.Login{AccountID: HostileAccountID, UserID: HostileUserID, Login: HostileLogin}
	}
	return nil
}

// processHandles is the process's cap on open handles: n, or what the open
// file limit leaves after 1024 for the rest.
func processHandles(n int) int {
	if n > 0 {
		return n
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2048 {
		return 1024
	}
	return int(min(uint64(lim.Cur), 1<<30)) - 1024
}

func (d *memDirectory) PasswordLogin(ctx context.Context, _, _ netip.Addr, login, password string) (*sftplogin.Login, error) {
	if d.passwordHash == "" {
		return nil, fmt.Errorf("%w: password logins are off", sftplogin.ErrLoginFailed)
	}
	// Verify even for a wrong login name, as the real directory does, so
	// the cost measured is that of every attempt.
	ok, err := tenant.VerifyPassword(ctx, d.passwordHash, password)
	if err != nil {
		return nil, err
	}
	if !ok || d.user(login) == nil {
		return nil, fmt.Errorf("%w: wrong login or password", sftplogin.ErrLoginFailed)
	}
	return d.user(login), nil
}

func (d *memDirectory) PublicKeyLogin(_ context.Context, _, _ netip.Addr, login string, key ssh.PublicKey) (*sftplogin.Login, error) {
	if d.user(login) == nil {
		return nil, fmt.Errorf("%w: unknown login", sftplogin.ErrLoginFailed)
	}
	wire := key.Marshal()
	for _, k := range d.keys {
		if bytes.Equal(k, wire) {
			return d.user(login), nil
		}
	}
	return nil, fmt.Errorf("%w: key not registered", sftplogin.ErrLoginFailed)
}

// profileHandler serves net/http/pprof for interactive use, and lets the
// driver bracket exactly one transfer with a CPU profile:
// POST /bench/cpu-start?path=F, POST /bench/cpu-stop, POST /bench/heap?path=F,
// and POST /bench/free to return freed memory to the OS.
func profileHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	var mu sync.Mutex
	var cpuFile *os.File
	mux.HandleFunc("POST /bench/cpu-start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cpuFile != nil {
			http.Error(w, "a CPU profile is already running", http.StatusConflict)
			return
		}
		f, err := os.Create(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			f.Close()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cpuFile = f
	})
	mux.HandleFunc("POST /bench/cpu-stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cpuFile == nil {
			http.Error(w, "no CPU profile is running", http.StatusConflict)
			return
		}
		rpprof.StopCPUProfile()
		if err := cpuFile.Close(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		cpuFile = nil
	})
	// The driver calls this before a measurement so that heap the previous
	// one left for the garbage collector is not counted in the next peak.
	mux.HandleFunc("POST /bench/free", func(http.ResponseWriter, *http.Request) { debug.FreeOSMemory() })
	mux.HandleFunc("POST /bench/heap", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer f.Close()
		if err := rpprof.Lookup("heap").WriteTo(f, 0); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}

type staticHostKeys []ssh.Signer

func (k staticHostKeys) HostKeys(context.Context, netip.Addr) ([]ssh.Signer, error) { return k, nil }

// vfsSessions opens the real per-user file tree, always allowed.
type vfsSessions struct {
	store   storage.Storage
	log     *slog.Logger
	handles *vfs.Counter
	replies *vfs.ReplyBudget
	metrics *vfs.Metrics
}

func (s *vfsSessions) Open(ctx context.Context, login *sftplogin.Login) (sftp.Session, error) {
	return vfs.NewSession(ctx, vfs.Config{
		AccountID: login.AccountID,
		UserID:    login.UserID,
		Jailed:    login.Jailed,
		Storage:   s.store,
		Gate:      vfs.GateFunc(func(context.Context) error { return nil }),
		Logger:    s.log,
		Handles:   s.handles.For(login.AccountID, login.UserID),
		Replies:   s.replies.For(),
		Metrics:   s.metrics,
	})

}
