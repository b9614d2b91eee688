// Package bench is Skiff's benchmark suite: it runs Skiff's SFTP server and,
// in the same run and on the same machine, OpenSSH's sshd serving
// internal-sftp, drives both with the same clients, and prints medians and
// Skiff/OpenSSH ratios. docs/BENCHMARKS.md describes the method and the
// results; cmd/skiffbench is the command line.
package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/pgserver"
	"github.com/skiffhq/skiff/sftp"
)

// Benchmark names, in the order Run runs them.
const (
	Throughput = "throughput"
	Logins     = "logins"
	Passwords  = "passwords"
	Idle       = "idle"
	GraphQL    = "graphql"
	AuthScale  = "authscale"
	Hostile    = "hostile"
	S3         = "s3"
	S3Small    = "s3-small"
)

// AllBenchmarks are the benchmarks Run knows.
var AllBenchmarks = []string{Throughput, Logins, Passwords, Idle, GraphQL, AuthScale, Hostile, S3, S3Small}

// Skiff server variants.
const (
	// VariantStock is Skiff's server offering every allowed cipher,
	// chacha20-poly1305 included (--sftp-ciphers with all of them).
	VariantStock = "stock"
	// VariantNoChaCha is Skiff's default offer, which leaves
	// chacha20-poly1305 out, so that OpenSSH clients left to their defaults
	// pick AES (aes128-ctr, their next choice). It only runs the
	// DefaultCipher case, where the stock variant would pick ChaCha20, as in
	// the forced ChaCha20 case.
	VariantNoChaCha = "no-chacha"
	// VariantMetrics is the stock server with its Prometheus metrics on, as
	// skiff serve --metrics-addr counts them: beside the stock one in the
	// same run, it shows what counting costs the data path.
	VariantMetrics = "metrics"
)

// AllVariants lists the variants in the order of the table.
var AllVariants = []string{VariantStock, VariantNoChaCha, VariantMetrics}

// DefaultCipher is the pseudo-cipher meaning "no -o Ciphers": whatever the
// OpenSSH client picks by default from what the server offers.
const DefaultCipher = "default"

// Config is one run of the suite.
type Config struct {
	// Benchmarks to run (AllBenchmarks when empty).
	Benchmarks []string
	// Smoke shrinks every size and duration so the whole suite takes
	// seconds; it only shows the suite still works.
	Smoke bool
	// Baseline runs OpenSSH's sshd next to Skiff. When sshd is missing, a
	// smoke run notes it and goes on with Skiff alone; a full run fails.
	Baseline bool
	// SkiffBinary is a built cmd/skiff for the benchmarks of the real
	// stack; empty builds one with the go command.
	SkiffBinary string
	// SSHD is the sshd binary (found in PATH or /usr/sbin when empty).
	SSHD string

	// Throughput.
	FileSize int64    // bytes per transfer
	Reps     int      // repetitions; the median is reported
	Streams  []int    // parallel transfers, e.g. 1 and 4
	Ciphers  []string // for the sftp client's -o Ciphers; DefaultCipher for none
	// SkiffCiphers are the ciphers Skiff offers (empty: its defaults).
	SkiffCiphers []string
	// SkiffVariants are the Skiff servers compared in the throughput table
	// (AllVariants); the first one also runs the other benchmarks. Empty:
	// all.
	SkiffVariants []string
	// ProfileDir, when set, receives a CPU profile of Skiff for the first
	// repetition of every throughput case.
	ProfileDir string
	// S3PlainHTTP runs the S3 benchmark's server on plain HTTP instead of
	// HTTPS (with a certificate authority of its own), as earlier runs did.
	// Over HTTP the AWS SDK hashes every byte Skiff uploads for the
	// request's signature; over HTTPS, as real services are reached, it
	// does not.
	S3PlainHTTP bool

	// Logins and passwords.
	LoginClients  int
	LoginDuration time.Duration
	// Password logins are slow by design (argon2id), so they get their own
	// duration; BurstAttempts concurrent attempts then check memory.
	PasswordDuration time.Duration
	BurstAttempts    int

	// Idle sessions.
	IdleSessions int

	// GraphQL: users and keys per user in the account; requests per case.
	GraphQLUsers       int
	GraphQLKeysPerUser int
	GraphQLRequests    int

	// Auth at scale: users (100 per account), keys per user, lookups.
	AuthUsers       int
	AuthKeysPerUser int
	AuthLookups     int

	// Hostile clients: flooding connections, and as many holding open
	// files, while one client downloads FileSize.
	HostileConns int

	// WorkDir holds the servers' files and keys (a temporary directory
	// under it is made and removed). Prefer a tmpfs so that the disk is not
	// what is measured.
	WorkDir string
	// KeepWorkDir leaves the files for inspection.
	KeepWorkDir bool

	// ServerCommand returns the command that runs RunServer with args in a
	// new process (e.g. the skiffbench binary with "server" first).
	ServerCommand func(args ...string) *exec.Cmd
	// CompareServerCommand, if set, runs another build's RunServer: the
	// small-files case on S3 runs it beside this one, alternating.
	CompareServerCommand func(args ...string) *exec.Cmd
	// S3Latency is what the small-files case on S3 adds to every request
	// to the store.
	S3Latency time.Duration

	// Out receives the result tables (Markdown); Log the progress.
	Out io.Writer
	Log *slog.Logger
}

// DefaultConfig is the full run documented in docs/BENCHMARKS.md.
func DefaultConfig() Config {
	return Config{
		Baseline:           true,
		FileSize:           1 << 30,
		Reps:               3,
		Streams:            []int{1, 4},
		Ciphers:            []string{ssh.CipherAES128GCM, ssh.CipherChaCha20Poly1305, DefaultCipher},
		LoginClients:       4,
		LoginDuration:      10 * time.Second,
		PasswordDuration:   10 * time.Second,
		BurstAttempts:      100,
		IdleSessions:       1000,
		GraphQLUsers:       10_000,
		GraphQLKeysPerUser: 3,
		GraphQLRequests:    200,
		AuthUsers:          1_000_000,
		AuthKeysPerUser:    3,
		AuthLookups:        20_000,
		HostileConns:       200,
		S3Latency:          5 * time.Millisecond,
	}
}

// SmokeConfig shrinks c to a run of seconds.
func SmokeConfig(c Config) Config {
	c.Smoke = true
	c.FileSize = 4 << 20
	c.Reps = 1
	c.Streams = []int{1, 2}
	c.Ciphers = []string{ssh.CipherAES128GCM, DefaultCipher}
	c.LoginClients = 2
	c.LoginDuration = 500 * time.Millisecond
	c.PasswordDuration = 500 * time.Millisecond
	c.BurstAttempts = 8
	c.IdleSessions = 20
	c.GraphQLUsers = 300
	c.GraphQLRequests = 5
	c.AuthUsers = 2000
	c.AuthLookups = 400
	c.HostileConns = 4
	return c
}

// runner is one run's state: the servers and where their files are.
type runner struct {
	cfg  Config
	log  *slog.Logger
	work string

	clientKey  string // private key file the clients log in with
	authorized string // its public half, authorized_keys format
	password   string // the benchmark user's password on the Skiff server

	skiffs    []*skiffServer // one per variant, all on the same storage
	skiff     *skiffServer   // the last variant, which runs every benchmark
	skiffData string         // storage base of the Skiff servers
	skiffHome string         // the benchmark user's home on disk

	sshd    *sshdServer
	sshdDir string // where the baseline's files are
	noSSHD  string // why there is no baseline, when there is none

	db   *benchDatabase // started by the first benchmark that needs it
	real *realStack     // "skiff serve", likewise

	cleanup []func() // run by close, last first

	report *report
}

// Run runs the configured benchmarks and writes the tables to cfg.Out.
func Run(ctx context.Context, cfg Config) error {
	if cfg.ServerCommand == nil {
		return errors.New("bench: Config.ServerCommand is required")
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if len(cfg.SkiffVariants) == 0 {
		cfg.SkiffVariants = AllVariants
	}
	for _, v := range cfg.SkiffVariants {
		if !slices.Contains(AllVariants, v) {
			return fmt.Errorf("bench: unknown Skiff variant %q (known: %v)", v, AllVariants)
		}
	}
	if len(cfg.Benchmarks) == 0 {
		cfg.Benchmarks = AllBenchmarks
	}
	for _, b := range cfg.Benchmarks {
		if !slices.Contains(AllBenchmarks, b) {
			return fmt.Errorf("bench: unknown benchmark %q (known: %v)", b, AllBenchmarks)
		}
	}
	if cfg.ProfileDir != "" {
		dir, err := makeProfileDir(cfg.ProfileDir)
		if err != nil {
			return err
		}
		cfg.ProfileDir = dir
	}
	base := cfg.WorkDir
	if base == "" {
		base = defaultWorkDir(cfg.FileSize, max(slices.Max(append(cfg.Streams, 1)), 1))
	}
	work, err := os.MkdirTemp(base, "skiffbench-")
	if err != nil {
		return err
	}
	if cfg.KeepWorkDir {
		cfg.Log.Info("work directory kept", "dir", work)
	} else {
		defer os.RemoveAll(work)
	}
	r := &runner{cfg: cfg, log: cfg.Log, work: work, report: newReport()}
	defer r.close()
	if err := r.setup(ctx); err != nil {
		return err
	}
	for _, b := range AllBenchmarks {
		if !slices.Contains(cfg.Benchmarks, b) {
			continue
		}
		r.log.Info("benchmark", "name", b)
		var err error
		switch b {
		case Throughput:
			err = r.throughput(ctx)
		case Logins:
			err = r.logins(ctx)
		case Passwords:
			err = r.passwords(ctx)
		case Idle:
			err = r.idle(ctx)
		case GraphQL:
			err = r.graphQL(ctx)
		case AuthScale:
			err = r.authScale(ctx)
		case Hostile:
			err = r.hostile(ctx)
		case S3:
			err = r.s3Bench(ctx)
		case S3Small:
			err = r.s3SmallBench(ctx)
		}
		if errors.Is(err, pgserver.ErrNotInstalled) && cfg.Smoke {
			// A fresh machine may lack PostgreSQL; the smoke run still
			// checks everything that does not need it.
			r.log.Warn("smoke run skips a benchmark: PostgreSQL is not installed", "benchmark", b, "err", err)
			continue
		}
		if err != nil {
			// What was measured before the failure is still worth
			// having: a long run should not end with nothing.
			r.report.write(cfg.Out, append(r.environment(), "INCOMPLETE RUN: "+b+" failed: "+err.Error()))
			return fmt.Errorf("%s: %w", b, err)
		}
	}
	r.report.write(cfg.Out, r.environment())
	return nil
}

// defaultWorkDir prefers /dev/shm when it has room for the files a
// throughput run makes (the source, and one upload per stream per server),
// so that both servers are measured without a disk in the way.
func defaultWorkDir(size int64, streams int) string {
	need := size * int64(2*streams+2)
	if free, err := freeBytes("/dev/shm"); err == nil && free > need+(1<<30) {
		return "/dev/shm"
	}
	return os.TempDir()
}

func (r *runner) setup(ctx context.Context) error {
	r.clientKey = filepath.Join(r.work, "client_ed25519")
	if err := writePrivateKey(r.clientKey); err != nil {
		return err
	}
	r.authorized = r.clientKey + ".pub"

	if r.cfg.Baseline {
		r.sshdDir = filepath.Join(r.work, "openssh")
		if err := os.MkdirAll(r.sshdDir, 0o700); err != nil {
			return err
		}
		s, err := startSSHD(ctx, r.cfg.SSHD, r.sshdDir, r.authorized)
		switch {
		case errors.Is(err, ErrNoSSHD) && r.cfg.Smoke:
			r.noSSHD = "sshd not installed"
			r.log.Warn("smoke run without the OpenSSH baseline", "reason", err)
		case err != nil:
			return err
		default:
			r.sshd = s
			r.log.Info("OpenSSH baseline", "version", s.version, "addr", s.addr)
		}
	} else {
		r.noSSHD = "baseline turned off"
	}
	r.password = rand.Text()
	return r.startSkiff(ctx)
}

// startSkiff (re)starts the Skiff servers, so that a benchmark can begin
// with fresh processes.
func (r *runner) startSkiff(ctx context.Context) error {
	r.stopSkiff()
	for _, v := range r.cfg.SkiffVariants {
		s, err := r.startSkiffVariant(ctx, v)
		if err != nil {
			return err
		}
		r.skiffs = append(r.skiffs, s)
	}
	r.skiff = r.skiffs[0]
	// The layout storage.Local documents: <base>/<account>/users/<user>.
	r.skiffHome = filepath.Join(r.skiffData, BenchAccountID, "users", BenchUserID)
	return nil
}

func (r *runner) stopSkiff() {
	for _, s := range r.skiffs {
		s.proc.stop()
	}
	r.skiffs, r.skiff = nil, nil
}

func (r *runner) startSkiffVariant(ctx context.Context, variant string) (*skiffServer, error) {
	r.skiffData = filepath.Join(r.work, "skiff")
	args := []string{"-data", r.skiffData, "-authorized-keys", r.authorized, "-pprof", "127.0.0.1:0"}
	switch {
	case len(r.cfg.SkiffCiphers) > 0:
		args = append(args, "-ciphers", strings.Join(r.cfg.SkiffCiphers, ","))
	case variant == VariantNoChaCha:
		// Skiff's default offer, which leaves ChaCha20 out.
		args = append(args, "-ciphers", strings.Join(sftp.DefaultAlgorithms().Ciphers, ","))
	default:
		// Every allowed cipher, so that the forced-ChaCha20 case can run.
		args = append(args, "-ciphers", strings.Join(sftp.AllowedCiphers(), ","))
	}
	if variant == VariantMetrics {
		args = append(args, "-metrics")
	}
	// The password travels on the command line: it is a throwaway for a
	// server that lives only on loopback for this run.
	args = append(args, "-password", r.password)
	s, err := startSkiffServer(ctx, r.cfg.ServerCommand, filepath.Join(r.work, "skiff-"+variant+".log"), args...)
	if err != nil {
		return nil, err
	}
	s.variant = variant
	return s, nil
}

func (r *runner) close() {
	r.stopSkiff()
	r.stopRealStack()
	if r.db != nil {
		r.db.close()
	}
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
	if r.sshd != nil {
		r.sshd.proc.stop()
	}
}

// makeProfileDir makes the profile directory if it is missing and returns
// its absolute path: the servers write profiles there too, from their own
// working directory.
func makeProfileDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err != nil {
		return "", fmt.Errorf("bench: profile directory: %w", err)
	}
	return abs, nil
}
