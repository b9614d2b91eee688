// Command skiffbench runs Skiff's benchmark suite against Skiff and, in the
// same run, OpenSSH's sshd with internal-sftp, and prints Markdown tables of
// medians and ratios. See docs/BENCHMARKS.md.
//
//	go run ./bench/cmd/skiffbench                    # the full suite (about 15 minutes)
//	go run ./bench/cmd/skiffbench -smoke             # seconds: checks the suite works
//	go run ./bench/cmd/skiffbench -only throughput -size 256MiB -reps 5
//
// "skiffbench server …" is the Skiff server process the suite starts; it is
// not meant to be run by hand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "server" {
		if err := bench.RunServer(ctx, os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "skiffbench server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "skiffbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	def := bench.DefaultConfig()
	fs := flag.NewFlagSet("skiffbench", flag.ContinueOnError)
	smoke := fs.Bool("smoke", false, "tiny sizes and durations: only checks that the suite works")
	only := fs.String("only", "", "comma-separated benchmarks to run (default all: "+strings.Join(bench.AllBenchmarks, ",")+")")
	size := fs.String("size", "1GiB", "bytes per transfer (suffixes KiB, MiB, GiB)")
	reps := fs.Int("reps", def.Reps, "repetitions of each transfer; the median is reported")
	streams := fs.String("streams", "1,4", "parallel transfer streams to measure, comma-separated")
	ciphers := fs.String("ciphers", strings.Join(def.Ciphers, ","), "sftp client ciphers to measure; \"default\" lets the client choose")
	skiffCiphers := fs.String("skiff-ciphers", "", "ciphers Skiff offers (default: Skiff's defaults)")
	variants := fs.String("variants", "", "Skiff servers in the throughput table, comma-separated (default all: "+strings.Join(bench.AllVariants, ",")+"); e.g. stock,metrics for metrics' cost")
	skiffBin := fs.String("skiff-binary", "", "built skiff binary for the real-stack benchmarks (default: go build ./cmd/skiff)")
	sshd := fs.String("sshd", "", "OpenSSH server binary (default: sshd from PATH or /usr/sbin)")
	noBaseline := fs.Bool("no-baseline", false, "do not run OpenSSH's sshd")
	loginTime := fs.Duration("login-duration", def.LoginDuration, "how long each login load runs")
	passwordTime := fs.Duration("password-duration", def.PasswordDuration, "how long the password login load runs")
	clients := fs.Int("clients", def.LoginClients, "concurrent login clients")
	idle := fs.Int("idle-sessions", def.IdleSessions, "idle sessions to hold")
	authUsers := fs.Int("auth-users", def.AuthUsers, "users in the auth-at-scale directory (100 per account)")
	authKeys := fs.Int("auth-keys", def.AuthKeysPerUser, "SSH keys per user in the auth-at-scale directory")
	hostileConns := fs.Int("hostile-conns", def.HostileConns, "hostile benchmark: flooding connections, and as many holding open files")
	workDir := fs.String("work-dir", "", "where the servers' files go (default /dev/shm when it has room, else the temp directory)")
	s3Latency := fs.Duration("s3-latency", def.S3Latency, "s3-small: delay added to every request to the S3 server")
	compareBin := fs.String("compare-binary", "", "s3-small: also run the servers of this skiffbench binary (another build), alternating with this one's")
	keep := fs.Bool("keep", false, "keep the work directory (logs, keys, configuration)")
	profileDir := fs.String("profile-dir", "", "write CPU profiles of Skiff here: every throughput case, the login loads (data-path server and skiff serve) and the GraphQL page")
	verbose := fs.Bool("v", false, "log every measurement")
	serverEnv := fs.String("server-env", "", "environment variables for the data-path servers this binary starts, comma-separated KEY=VALUE (e.g. GOMEMLIMIT=16MiB to measure the Go runtime's settings)")
	s3PlainHTTP := fs.Bool("s3-plain-http", false, "S3 benchmark: the S3 server on plain HTTP instead of HTTPS (Skiff then also hashes every uploaded byte for the request's signature)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := def
	if *smoke {
		cfg = bench.SmokeConfig(cfg)
	}
	var err error
	if !*smoke || set["size"] {
		if cfg.FileSize, err = parseSize(*size); err != nil {
			return err
		}
	}
	if !*smoke || set["reps"] {
		cfg.Reps = *reps
	}
	if !*smoke || set["streams"] {
		if cfg.Streams, err = parseInts(*streams); err != nil {
			return err
		}
	}
	if !*smoke || set["ciphers"] {
		cfg.Ciphers = splitList(*ciphers)
	}
	if !*smoke || set["login-duration"] {
		cfg.LoginDuration = *loginTime
	}
	if !*smoke || set["password-duration"] {
		cfg.PasswordDuration = *passwordTime
	}
	if !*smoke || set["clients"] {
		cfg.LoginClients = *clients
	}
	if !*smoke || set["idle-sessions"] {
		cfg.IdleSessions = *idle
	}
	if !*smoke || set["auth-users"] {
		cfg.AuthUsers = *authUsers
	}
	if !*smoke || set["auth-keys"] {
		cfg.AuthKeysPerUser = *authKeys
	}
	if !*smoke || set["hostile-conns"] {
		cfg.HostileConns = *hostileConns
	}
	cfg.Benchmarks = splitList(*only)
	cfg.SkiffCiphers = splitList(*skiffCiphers)
	cfg.SkiffVariants = splitList(*variants)
	cfg.Baseline = !*noBaseline
	cfg.SSHD = *sshd
	cfg.SkiffBinary = *skiffBin
	cfg.WorkDir = *workDir
	cfg.KeepWorkDir = *keep
	cfg.ProfileDir = *profileDir
	cfg.S3PlainHTTP = *s3PlainHTTP
	if cfg.Reps < 1 {
		return errors.New("-reps must be at least 1")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := splitList(*serverEnv)
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("-server-env: %q is not KEY=VALUE", kv)
		}
	}
	serverCommand := func(bin string) func(args ...string) *exec.Cmd {
		return func(args ...string) *exec.Cmd {
			cmd := exec.Command(bin, append([]string{"server"}, args...)...)
			if len(env) > 0 {
				cmd.Env = append(os.Environ(), env...)
			}
			return cmd
		}
	}
	cfg.ServerCommand = serverCommand(self)
	if *compareBin != "" {
		cfg.CompareServerCommand = serverCommand(*compareBin)
	}
	cfg.S3Latency = *s3Latency
	start := time.Now()
	err = bench.Run(ctx, cfg)
	fmt.Fprintf(os.Stderr, "skiffbench: finished in %s\n", time.Since(start).Round(time.Second))
	return err
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, v := range splitList(s) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q", v)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("bad size %q (e.g. 1GiB, 64MiB)", s)
	}
	return n * mult, nil
}
