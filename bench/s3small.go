package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/s3test"
)

// smallFiles is how many files the small-files case copies each way.
const smallFiles = 100

// s3SmallBench measures what a store's latency costs Skiff on S3 for the
// work of small files, where the round trips to the store, not the bytes,
// set the time: every request to versitygw goes through a proxy that delays
// it by Config.S3Latency (a real service answers in 10–20 ms; versitygw on
// loopback in well under one). Against rclone copying the same files
// straight to the same bucket through the same proxy: rclone's S3 side asks
// what an S3 client needs, Skiff's what SFTP semantics need on top (a
// folder's existence, a name's type before an upload, times).
//
// With Config.CompareServerCommand the same cases run on that build too,
// alternating with this one, for a same-run comparison of two builds.
func (r *runner) s3SmallBench(ctx context.Context) error {
	rclone, bin, err := r.s3Tools("the S3 small-files benchmark")
	if err != nil || rclone == "" {
		return err
	}
	launch := s3test.LaunchTLS
	if r.cfg.S3PlainHTTP {
		launch = s3test.Launch
	}
	srv, err := launch(bin, filepath.Join(r.work, "s3-small"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	scheme, host, _ := strings.Cut(srv.Endpoint, "://")
	proxy, err := startLatencyProxy(host, r.cfg.S3Latency)
	if err != nil {
		return err
	}
	defer proxy.Close()
	endpoint := scheme + "://" + proxy.Addr().String()
	url := strings.Replace(srv.URL("skiff"), srv.Endpoint, endpoint, 1)

	n := smallFiles
	if r.cfg.Smoke {
		n = 10
	}
	src := filepath.Join(r.work, "small-src")
	if err := writeSmallFiles(src, n); err != nil {
		return err
	}
	defer os.RemoveAll(src)
	down := filepath.Join(r.work, "small-down")
	defer os.RemoveAll(down)

	type build struct {
		name             string
		server           *skiffServer
		knownHosts       string
		up, dn           []time.Duration
		puts, gets, dirs []time.Duration
	}
	builds := []*build{{name: "this build"}}
	commands := []func(args ...string) *exec.Cmd{r.cfg.ServerCommand}
	if r.cfg.CompareServerCommand != nil {
		builds = append(builds, &build{name: "the build compared"})
		commands = append(commands, r.cfg.CompareServerCommand)
	}
	for i, b := range builds {
		command := func(args ...string) *exec.Cmd {
			cmd := commands[i](args...)
			cmd.Env = append(cmd.Environ(), srv.Env()...)
			return cmd
		}
		prefix := fmt.Sprintf("skiff%d", i) // each build a tree of its own
		b.server, err = startSkiffServer(ctx, command, filepath.Join(r.work, fmt.Sprintf("skiff-s3-small-%d.log", i)),
			"-data", filepath.Join(r.work, "skiff-s3-small-unused"), "-storage-url", strings.Replace(url, "/skiff?", "/"+prefix+"?", 1),
			"-authorized-keys", r.authorized)
		if err != nil {
			return err
		}
		defer b.server.proc.stop()
		if b.knownHosts, err = r.writeKnownHostsFor(b.server); err != nil {
			return err
		}
	}

	env := rcloneS3Env(srv, endpoint)
	sftpEnv := func(b *build) []string { return r.rcloneSFTPEnv(env, b.server.addr, b.knownHosts) }
	runRclone := func(env []string, args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, rclone, append(args, "--transfers", "4")...)
		cmd.Env = env
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("rclone %s: %v: %s", strings.Join(args, " "), err, lastLines(out.String(), 5))
		}
		return time.Since(start), nil
	}
	copied := func(dir string) error {
		list, err := os.ReadDir(dir)
		if err != nil || len(list) != n {
			return fmt.Errorf("%d files came back, want %d (%v)", len(list), n, err)
		}
		return os.RemoveAll(dir)
	}
	var puts, gets strings.Builder
	for i := range n {
		fmt.Fprintf(&puts, "put %q\n", filepath.Join(src, smallFileName(i)))
		fmt.Fprintf(&gets, "get %s\n", smallFileName(i))
	}
	var rcUp, rcDown []time.Duration
	for rep := range r.cfg.Reps {
		for _, b := range builds {
			dst := fmt.Sprintf("benchsftp:rclone-%d", rep)
			d, err := runRclone(sftpEnv(b), "copy", src, dst)
			if err != nil {
				return err
			}
			b.up = append(b.up, d)
			if d, err = runRclone(sftpEnv(b), "copy", dst, down); err != nil {
				return err
			}
			b.dn = append(b.dn, d)
			if err := copied(down); err != nil {
				return err
			}
			// OpenSSH's sftp, one file after the other (what a script's
			// mput does), into a folder of its own.
			dir := fmt.Sprintf("sftp-%d", rep)
			if d, err = r.sftpBatch(ctx, b.server.addr, b.knownHosts, fmt.Sprintf("mkdir %s\ncd %s\n%s", dir, dir, puts.String())); err != nil {
				return err
			}
			b.puts = append(b.puts, d)
			if err := os.MkdirAll(down, 0o755); err != nil {
				return err
			}
			if d, err = r.sftpBatch(ctx, b.server.addr, b.knownHosts, fmt.Sprintf("cd %s\nlcd %s\n%s", dir, down, gets.String())); err != nil {
				return err
			}
			b.gets = append(b.gets, d)
			if err := copied(down); err != nil {
				return err
			}
			ops := fmt.Sprintf("mkdir ops-%d\ncd ops-%d\nmkdir a\nmkdir b\nls -l\ncd a\nls -l\ncd ..\nrename a c\nls -l\nrmdir b\nrmdir c\ncd ..\nrmdir ops-%d\nls -l %s\n", rep, rep, rep, dir)
			if d, err = r.sftpBatch(ctx, b.server.addr, b.knownHosts, ops); err != nil {
				return err
			}
			b.dirs = append(b.dirs, d)
		}
		dst := fmt.Sprintf("benchs3:%s/rclone-small-%d", srv.Bucket, rep)
		d, err := runRclone(env, "copy", src, dst)
		if err != nil {
			return err
		}
		rcUp = append(rcUp, d)
		if d, err = runRclone(env, "copy", dst, down); err != nil {
			return err
		}
		rcDown = append(rcDown, d)
		if err := copied(down); err != nil {
			return err
		}
	}

	cols := []string{"case"}
	for _, b := range builds {
		cols = append(cols, "Skiff ("+b.name+"), s")
	}
	cols = append(cols, "rclone straight to S3, s", "Skiff/rclone")
	sec := r.report.section(fmt.Sprintf("Small files on S3-backed storage, each store request delayed %s (%s, %d files)", r.cfg.S3Latency, scheme, n), cols...)
	row := func(name string, pick func(*build) []time.Duration, baseline []time.Duration) {
		cells := []string{name}
		for _, b := range builds {
			cells = append(cells, num(median(pick(b)).Seconds(), "%.2f"))
		}
		if baseline == nil {
			cells = append(cells, "", "")
		} else {
			cells = append(cells, num(median(baseline).Seconds(), "%.2f"), num(median(pick(builds[0])).Seconds()/median(baseline).Seconds(), "%.2f"))
		}
		sec.row(cells...)
	}
	row(fmt.Sprintf("`rclone copy` of %d files up (SFTP / S3)", n), func(b *build) []time.Duration { return b.up }, rcUp)
	row("`rclone copy` of them back down", func(b *build) []time.Duration { return b.dn }, rcDown)
	row(fmt.Sprintf("OpenSSH `sftp`: %d `put`s, one after the other", n), func(b *build) []time.Duration { return b.puts }, nil)
	row(fmt.Sprintf("OpenSSH `sftp`: %d `get`s, one after the other", n), func(b *build) []time.Duration { return b.gets }, nil)
	row("OpenSSH `sftp`: a batch of folder operations (`mkdir`, `cd`, `ls -l`, `rename`, `rmdir`)", func(b *build) []time.Duration { return b.dirs }, nil)
	sec.note("Medians of %d; lower is better. Files of 1–64 KiB; rclone with `--transfers 4` on both sides, as the SFTP client with hashes off (shell_type none). "+
		"Every request from Skiff and from rclone's S3 side to versitygw waits %s in a proxy (startLatencyProxy); logins and start-up are included in every case.", r.cfg.Reps, r.cfg.S3Latency)
	return nil
}

// smallFileName is the name of the small-files case's file i.
func smallFileName(i int) string { return fmt.Sprintf("doc%03d.bin", i) }

// writeSmallFiles writes n files of 1–64 KiB of random bytes into dir.
func writeSmallFiles(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		b := make([]byte, 1<<10+rng.IntN(63<<10))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, smallFileName(i)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startLatencyProxy forwards TCP connections to upstream, holding every
// byte from the client for delay before passing it on (the answers pass at
// once): each request waits delay more for its answer, however it is
// encrypted, as behind a link with that much more round-trip time.
func startLatencyProxy(upstream string, delay time.Duration) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go proxyDelayed(c, upstream, delay)
		}
	}()
	return ln, nil
}

func proxyDelayed(c net.Conn, upstream string, delay time.Duration) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(c, u)
		c.Close()
	})
	type chunk struct {
		b  []byte
		at time.Time
	}
	chunks := make(chan chunk, 256)
	wg.Go(func() {
		for ch := range chunks {
			time.Sleep(time.Until(ch.at))
			if _, err := u.Write(ch.b); err != nil {
				u.Close()
				for range chunks { // let the reader finish
				}
				return
			}
		}
		if tc, ok := u.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // the client is done sending; its answers still come
		}
	})
	for {
		b := make([]byte, 64<<10)
		k, err := c.Read(b)
		if k > 0 {
			chunks <- chunk{b[:k], time.Now().Add(delay)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				u.Close()
			}
			break
		}
	}
	close(chunks)
	wg.Wait()
}
