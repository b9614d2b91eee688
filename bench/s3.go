package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage/s3"
)

// rcloneTunings are the (--s3-upload-concurrency, --s3-chunk-size) pairs
// rclone runs with; the best of them is the baseline. Its defaults (4, 5M)
// come first.
var rcloneTunings = []struct {
	concurrency int
	chunk       string
}{{4, "5M"}, {4, "16M"}, {8, "16M"}, {16, "16M"}, {8, "64M"}}

// s3Objects is how many objects the listing case puts in one folder.
const s3Objects = 10_000

// concurrentUploads is how many uploads run at once for the per-upload
// memory of a busy server.
const concurrentUploads = 4

// s3Bench measures Skiff on S3-backed storage against rclone talking to the
// same S3 server (versitygw over the work directory, a tmpfs by default, so
// the store is not the disk): a FileSize upload and download through SFTP
// against `rclone copy` of the same file to and from the same bucket, the
// server's peak memory during the upload against part size × parts in
// flight, and listing a folder of 10,000 objects against `rclone lsf`.
func (r *runner) s3Bench(ctx context.Context) error {
	rclone, bin, err := r.s3Tools("the S3 benchmark")
	if err != nil || rclone == "" {
		return err
	}
	launch := s3test.LaunchTLS
	if r.cfg.S3PlainHTTP {
		launch = s3test.Launch
	}
	srv, err := launch(bin, filepath.Join(r.work, "s3"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	cfg := s3.Config{PartSize: s3.DefaultPartSize, PartsInFlight: s3.DefaultPartsInFlight}
	url := srv.URL("skiff") + fmt.Sprintf("&part_size=%d&parts_in_flight=%d", cfg.PartSize, cfg.PartsInFlight)
	command := func(args ...string) *exec.Cmd {
		cmd := r.cfg.ServerCommand(args...)
		cmd.Env = append(cmd.Environ(), srv.Env()...) // keeps what ServerCommand set
		return cmd
	}
	sk, err := startSkiffServer(ctx, command, filepath.Join(r.work, "skiff-s3.log"),
		"-data", filepath.Join(r.work, "skiff-s3-unused"), "-storage-url", url, "-authorized-keys", r.authorized, "-pprof", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sk.proc.stop()
	knownHosts, err := r.writeKnownHostsFor(sk)
	if err != nil {
		return err
	}
	src := filepath.Join(r.work, "s3-src.bin")
	if err := writeRandomFile(src, r.cfg.FileSize); err != nil {
		return err
	}
	defer os.Remove(src)
	down := filepath.Join(r.work, "s3-down.bin")
	home := "skiff/" + BenchAccountID + "/users/" + BenchUserID + "/"

	rcloneEnv := rcloneS3Env(srv, srv.Endpoint)
	runRclone := func(args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, rclone, args...)
		cmd.Env = rcloneEnv
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &out
		start := time.Now()
		err := cmd.Run()
		if err != nil {
			return 0, fmt.Errorf("rclone %s: %v: %s", strings.Join(args, " "), err, lastLines(out.String(), 5))
		}
		d := time.Since(start)
		r.log.Info("rclone", "args", args, "client CPU s", (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds())
		return d, nil
	}
	sftpRun := func(batch string) (time.Duration, error) {
		return r.sftpBatch(ctx, sk.addr, knownHosts, batch)
	}
	mbps := func(d time.Duration) float64 { return float64(r.cfg.FileSize) / 1e6 / d.Seconds() }
	// sftpGet downloads up.bin with OpenSSH's sftp (extra: its options)
	// and logs the server's CPU time for it.
	sftpGet := func(extra ...string) (time.Duration, error) {
		cpu0, _ := processCPU(sk.proc.pid())
		d, err := r.sftpBatch(ctx, sk.addr, knownHosts, fmt.Sprintf("get up.bin %q\n", down), extra...)
		if err != nil {
			return 0, err
		}
		cpu1, _ := processCPU(sk.proc.pid())
		r.log.Info("sftp get from S3", "options", extra, "MB/s", mbps(d), "server CPU s", (cpu1 - cpu0).Seconds())
		if err := checkSize(down, r.cfg.FileSize); err != nil {
			return 0, fmt.Errorf("download: %w", err)
		}
		return d, os.Remove(down)
	}

	scheme := "HTTPS"
	if srv.CAFile == "" {
		scheme = "plain HTTP"
	}
	sec := r.report.section(fmt.Sprintf("S3-backed storage against rclone, same versitygw (%s, %s), %s file", fsType(r.work), scheme, bytesize.Exact(r.cfg.FileSize)),
		"case", "Skiff", "rclone (uploads: best tuning; downloads: median)", "Skiff/rclone")

	// Uploads.
	var skUp []time.Duration
	var peaks []int64
	// Every upload's peak is taken over the idle server's RSS before the
	// first: what uploads keep between them (buffers kept for reuse)
	// counts as theirs.
	if err := sk.profile("free", ""); err != nil {
		return err
	}
	rss0, err := currentRSS(sk.proc.pid())
	if err != nil {
		return err
	}
	// The program's pages the first upload touches (the S3 client's
	// multipart code, TLS) are file-backed and counted once per process:
	// RssFile grows by them and does not shrink.
	file0, err := statusField(sk.proc.pid(), "RssFile:")
	if err != nil {
		return err
	}
	// RssAnon (heap, stacks, the mapped parts) sampled during each upload:
	// the peak without the program's pages.
	anon0, err := statusField(sk.proc.pid(), "RssAnon:")
	if err != nil {
		return err
	}
	var file1 int64
	var anonPeaks []int64
	for i := range r.cfg.Reps {
		if err := sk.profile("free", ""); err != nil {
			return err
		}
		if err := resetPeakRSS(sk.proc.pid()); err != nil {
			return fmt.Errorf("reset peak RSS: %w", err)
		}
		anon := sampleAnon(sk.proc.pid(), 5*time.Millisecond)
		cpu0, _ := processCPU(sk.proc.pid())
		d, err := sftpRun(fmt.Sprintf("put %q up.bin\n", src))
		anonPeak := anon.Stop()
		if err != nil {
			return err
		}
		cpu1, _ := processCPU(sk.proc.pid())
		peak, err := peakRSS(sk.proc.pid())
		if err != nil {
			return err
		}
		anonPeaks = append(anonPeaks, anonPeak-anon0)
		r.log.Info("s3 upload memory", "peak over idle MiB", (peak-rss0)>>20, "anonymous peak over idle MiB", (anonPeak-anon0)>>20,
			"upload s", d.Seconds(), "server CPU s", (cpu1 - cpu0).Seconds())
		if i == 0 {
			if file1, err = statusField(sk.proc.pid(), "RssFile:"); err != nil {
				return err
			}
		}
		skUp = append(skUp, d)
		peaks = append(peaks, peak-rss0)
	}
	if r.cfg.ProfileDir != "" {
		// What the lone uploads allocated, by site (alloc_space).
		if err := sk.profile("heap", filepath.Join(r.cfg.ProfileDir, "heap-s3-upload.pprof")); err != nil {
			return err
		}
	}
	// Several uploads at once: what each one adds. A lone upload's figure
	// above also holds what the process pays once, whichever work comes
	// first: the collector's room over the heap it already had, program
	// pages touched for the first time, the HTTP connection pool.
	// Concurrent uploads share that, and each shows its own cost: its parts
	// and its share of the garbage of its SSH packets.
	var perUpload []int64
	for range r.cfg.Reps {
		if err := sk.profile("free", ""); err != nil {
			return err
		}
		if err := resetPeakRSS(sk.proc.pid()); err != nil {
			return fmt.Errorf("reset peak RSS: %w", err)
		}
		errs := make([]error, concurrentUploads)
		var wg sync.WaitGroup
		for i := range concurrentUploads {
			wg.Go(func() {
				_, errs[i] = sftpRun(fmt.Sprintf("put %q up-%d.bin\n", src, i))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		peak, err := peakRSS(sk.proc.pid())
		if err != nil {
			return err
		}
		perUpload = append(perUpload, (peak-rss0)/concurrentUploads)
		var rm strings.Builder
		for i := range concurrentUploads {
			fmt.Fprintf(&rm, "rm up-%d.bin\n", i)
		}
		if _, err := sftpRun(rm.String()); err != nil {
			return err
		}
	}
	if r.cfg.ProfileDir != "" {
		// An extra, uncounted download with the server's CPU profiled.
		if err := sk.profile("cpu-start", filepath.Join(r.cfg.ProfileDir, "cpu-s3-download.pprof")); err != nil {
			return err
		}
		_, err := sftpGet()
		if perr := sk.profile("cpu-stop", ""); err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
	}
	// The same downloads with rclone as the SFTP client: like its S3 downloads
	// below, it fetches a large file over several streams at once
	// (--multi-thread-streams, 4 by default here, each its own SFTP
	// connection), where OpenSSH's sftp has one. Hashes off (shell_type none),
	// as OpenSSH's get checks none either.
	sftpEnv := r.rcloneSFTPEnv(rcloneEnv, sk.addr, knownHosts)
	// rclone's SFTP defaults (32 KiB requests, 64 in flight per file) and
	// the same client tuned as its S3 side is: 255 KiB requests, the most
	// the server answers in one packet (it announces so in
	// limits@openssh.com; sftp/vfs maxTxPacket).
	// Each download's peak memory is taken over the idle server's RSS
	// before the first upload, as the uploads' are.
	rcloneSFTP := func(extra ...string) ([]time.Duration, []int64, error) {
		var ds []time.Duration
		var peaks []int64
		for range r.cfg.Reps {
			if err := sk.profile("free", ""); err != nil {
				return nil, nil, err
			}
			if err := resetPeakRSS(sk.proc.pid()); err != nil {
				return nil, nil, fmt.Errorf("reset peak RSS: %w", err)
			}
			args := append([]string{"copyto", "benchsftp:up.bin", down, "--ignore-times", "--multi-thread-streams", "4", "--multi-thread-cutoff", "64M"}, extra...)
			cmd := exec.CommandContext(ctx, rclone, args...)
			cmd.Env = sftpEnv
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = io.Discard, &out
			cpu0, _ := processCPU(sk.proc.pid())
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return nil, nil, fmt.Errorf("rclone sftp download: %v: %s", err, lastLines(out.String(), 5))
			}
			d := time.Since(start)
			peak, err := peakRSS(sk.proc.pid())
			if err != nil {
				return nil, nil, err
			}
			peaks = append(peaks, peak-rss0)
			cpu1, _ := processCPU(sk.proc.pid())
			ds = append(ds, d)
			r.log.Info("rclone sftp download", "flags", extra, "MB/s", mbps(d), "server CPU s", (cpu1 - cpu0).Seconds(),
				"client CPU s", (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds())
			if err := checkSize(down, r.cfg.FileSize); err != nil {
				return nil, nil, fmt.Errorf("rclone sftp download: %w", err)
			}
			os.Remove(down)
		}
		return ds, peaks, nil
	}
	skDownMulti, _, err := rcloneSFTP()
	if err != nil {
		return err
	}
	skDownMultiTuned, downPeaks, err := rcloneSFTP("--sftp-chunk-size", "255k")
	if err != nil {
		return err
	}
	bestUp := time.Duration(0)
	var bestTuning string
	tunings := rcloneTunings
	if r.cfg.Smoke {
		tunings = tunings[:1]
	}
	for _, tu := range tunings {
		flags := []string{"--s3-upload-concurrency", fmt.Sprint(tu.concurrency), "--s3-chunk-size", tu.chunk}
		var ups []time.Duration
		// --ignore-times: copy even when the destination looks the same
		// (rclone skips unchanged files otherwise).
		flags = append(flags, "--ignore-times")
		for range r.cfg.Reps {
			d, err := runRclone(append([]string{"copyto", src, "benchs3:" + srv.Bucket + "/rclone/up.bin"}, flags...)...)
			if err != nil {
				return err
			}
			ups = append(ups, d)
		}
		up := median(ups)
		r.log.Info("rclone", "concurrency", tu.concurrency, "chunk", tu.chunk, "up MB/s", mbps(up))
		if bestUp == 0 || up < bestUp {
			bestUp, bestTuning = up, fmt.Sprintf("--s3-upload-concurrency %d --s3-chunk-size %s", tu.concurrency, tu.chunk)
		}
	}
	// rcloneGet copies the bucket's key to down with rclone and checks it.
	rcloneGet := func(key string) (time.Duration, error) {
		d, err := runRclone("copyto", "benchs3:"+srv.Bucket+"/"+key, down, "--ignore-times")
		if err != nil {
			return 0, err
		}
		if err := checkSize(down, r.cfg.FileSize); err != nil {
			return 0, fmt.Errorf("rclone download: %w", err)
		}
		return d, os.Remove(down)
	}
	// Downloads, each round Skiff's and rclone's in turn, so that both see
	// the machine as it is then: OpenSSH's sftp from Skiff, then rclone
	// copying its own upload of the file back from the bucket (the last
	// tuning's; the flags tune uploads only, a download is the same after
	// every one). The reference is the median of these runs. (Until the
	// fourteenth session it was the best of the tunings' medians: the same
	// download measured five times over and the fastest kept, against one
	// median of Skiff's.) rclone checks what it downloads against the MD5
	// it stored with its upload, as it does by default; an object without
	// one, such as Skiff's, it copies back with no check, about twice as
	// fast here (rcNoCheck).
	//
	// OpenSSH's sftp picks aes128-ctr with hmac-sha2-256-etm from what
	// Skiff offers (its own order puts chacha20-poly1305 first, which Skiff
	// does not offer by default, then the CTR ciphers; the client's order
	// decides). Tuned: it asks for aes128-gcm@openssh.com, which Skiff
	// offers first, and which costs both ends less per byte.
	var skDown, skDownGCM, rcDown, rcNoCheck []time.Duration
	var pairs []float64
	for range r.cfg.Reps {
		d, err := sftpGet()
		if err != nil {
			return err
		}
		skDown = append(skDown, d)
		if d, err = sftpGet("-c", ssh.CipherAES128GCM); err != nil {
			return err
		}
		skDownGCM = append(skDownGCM, d)
		rd, err := rcloneGet("rclone/up.bin")
		if err != nil {
			return err
		}
		rcDown = append(rcDown, rd)
		pairs = append(pairs, rd.Seconds()/skDown[len(skDown)-1].Seconds())
		if rd, err = rcloneGet(home + "up.bin"); err != nil {
			return err
		}
		rcNoCheck = append(rcNoCheck, rd)
	}
	// The same transfers with Skiff on the local disk (tmpfs), in the same
	// run: what the S3 backend costs over the disk, whatever the machine.
	// A server of its own, started as the S3 one but for the storage, so
	// that OpenSSH's client picks the same cipher from both (the suite's
	// other servers offer ChaCha20, which it would pick there).
	diskData := filepath.Join(r.work, "skiff-s3-disk")
	defer os.RemoveAll(diskData)
	disk, err := startSkiffServer(ctx, r.cfg.ServerCommand, filepath.Join(r.work, "skiff-s3-disk.log"),
		"-data", diskData, "-authorized-keys", r.authorized)
	if err != nil {
		return err
	}
	defer disk.proc.stop()
	diskHosts, err := r.writeKnownHostsFor(disk)
	if err != nil {
		return err
	}
	cipher, err := r.probeCipher(ctx, sk.addr, knownHosts)
	if err != nil {
		return err
	}
	if diskCipher, err := r.probeCipher(ctx, disk.addr, diskHosts); err != nil {
		return err
	} else if diskCipher != cipher {
		return fmt.Errorf("OpenSSH's client picks %s on S3 and %s on the disk: the two would not compare", cipher, diskCipher)
	}
	var diskUp, diskDown []time.Duration
	for range r.cfg.Reps {
		d, err := r.sftpBatch(ctx, disk.addr, diskHosts, fmt.Sprintf("put %q disk-up.bin\n", src))
		if err != nil {
			return err
		}
		diskUp = append(diskUp, d)
		d, err = r.sftpBatch(ctx, disk.addr, diskHosts, fmt.Sprintf("get disk-up.bin %q\n", down))
		if err != nil {
			return err
		}
		os.Remove(down)
		diskDown = append(diskDown, d)
	}
	up, dn := median(skUp), median(skDown)
	rcDn := median(rcDown)
	sec.row("upload MB/s", num(mbps(up), "%.0f"), num(mbps(bestUp), "%.0f"), num(mbps(up)/mbps(bestUp), "%.2f"))
	downRow := func(label string, ds []time.Duration) {
		sec.row(label, num(mbps(median(ds)), "%.0f"), num(mbps(rcDn), "%.0f"), num(mbps(median(ds))/mbps(rcDn), "%.2f"))
	}
	downRow("download MB/s", skDown)
	sec.row("download, Skiff/rclone within each round: lowest – median – highest", "", "",
		num(slices.Min(pairs), "%.2f")+" – "+num(median(pairs), "%.2f")+" – "+num(slices.Max(pairs), "%.2f"))
	downRow("download MB/s, OpenSSH sftp get -c aes128-gcm@openssh.com", skDownGCM)
	downRow("download MB/s, rclone as the SFTP client (4 streams, its defaults)", skDownMulti)
	downRow("download MB/s, rclone as the SFTP client (4 streams, --sftp-chunk-size 255k)", skDownMultiTuned)
	sec.row("download MB/s, rclone copying Skiff's object back (it has no MD5 of rclone's to check)", "", num(mbps(median(rcNoCheck)), "%.0f"),
		num(mbps(dn)/mbps(median(rcNoCheck)), "%.2f"))
	du, dd := median(diskUp), median(diskDown)
	sec.row("upload MB/s, Skiff on local disk (same run, same cipher)", num(mbps(du), "%.0f"), "", "S3/disk "+num(mbps(up)/mbps(du), "%.2f"))
	sec.row("download MB/s, Skiff on local disk (same run, same cipher)", num(mbps(dd), "%.0f"), "", "S3/disk "+num(mbps(dn)/mbps(dd), "%.2f"))
	bound := cfg.PartSize*int64(cfg.PartsInFlight) + 8<<20
	sec.row("server memory during the upload (peak RSS − idle RSS before the first upload), median", numMiB(median(peaks)), "", fmt.Sprintf("bound %s", numMiB(bound)))
	sec.row("the same, largest of the uploads", numMiB(slices.Max(peaks)), "", fmt.Sprintf("bound %s", numMiB(bound)))
	sec.row("of which the program's pages the first upload touched (RssFile's growth)", numMiB(file1-file0), "", "")
	sec.row("anonymous memory only (RssAnon sampled every 5 ms: heap, stacks, parts), median / largest",
		fmt.Sprintf("%s / %s", numMiB(median(anonPeaks)), numMiB(slices.Max(anonPeaks))), "", fmt.Sprintf("bound %s", numMiB(bound)))
	sec.row("server memory during rclone's 4-stream download (255k requests; peak RSS − idle RSS before the first upload), median",
		numMiB(median(downPeaks)), "", "")
	sec.row(fmt.Sprintf("%d uploads at once: (peak RSS − idle RSS before the first upload) / %d, median", concurrentUploads, concurrentUploads),
		numMiB(median(perUpload)), "", fmt.Sprintf("bound %s", numMiB(bound)))
	sec.note("Medians of %d. rclone's best upload tuning: %s (of %d tried, its default first). Downloads: each round Skiff's gets and rclone's, in turn; the reference is the median of rclone copying its own upload back (it checks the MD5 it stored, its default). "+
		"Skiff: part size %s, %d parts in flight. OpenSSH's sftp with its defaults (it picked %s, on S3 and on the disk) "+
		"unless a row names an option; rclone's SFTP defaults are 32 KiB requests, Skiff answers up to 255 KiB (limits@openssh.com).",
		r.cfg.Reps, bestTuning, len(tunings), numMiB(cfg.PartSize), cfg.PartsInFlight, cipher)

	// Listing a folder of 10,000 objects.
	n := s3Objects
	if r.cfg.Smoke {
		n = 300
	}
	if err := putEmptyObjects(ctx, srv, home+"many/", n); err != nil {
		return err
	}
	var skList, rcList []time.Duration
	for range max(r.cfg.Reps, 3) {
		d, err := sftpRun("ls -l many\n")
		if err != nil {
			return err
		}
		skList = append(skList, d)
		d, err = runRclone("lsf", "benchs3:"+srv.Bucket+"/"+home+"many/")
		if err != nil {
			return err
		}
		rcList = append(rcList, d)
	}
	ls, lr := median(skList), median(rcList)
	sec.row(fmt.Sprintf("list %d objects, s", n), num(ls.Seconds(), "%.2f"), num(lr.Seconds(), "%.2f"), num(ls.Seconds()/lr.Seconds(), "%.2f"))
	sec.note("Listing: OpenSSH sftp `ls -l many` (login included) against `rclone lsf` (start-up included); lower is better there.")
	return nil
}

// checkSize reports whether the file at path has size bytes, as a download
// of the benchmark's file must.
func checkSize(path string, size int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("%s has %d bytes, want %d", path, fi.Size(), size)
	}
	return nil
}

// s3Tools finds rclone and the S3 server's binary for what: both empty
// (and no error) when a smoke run should skip it for want of one.
func (r *runner) s3Tools(what string) (rclone, bin string, err error) {
	rclone, err = exec.LookPath("rclone")
	if err != nil {
		err = fmt.Errorf("rclone is not installed: %w", err)
	}
	bin, berr := s3test.Binary()
	if err == nil && berr != nil {
		err = fmt.Errorf("no S3 server: %w", berr)
	}
	if err != nil && r.cfg.Smoke {
		r.log.Warn("smoke run skips "+what, "err", err)
		return "", "", nil
	}
	return rclone, bin, err
}

// rcloneS3Env is the environment that gives rclone the remote benchs3: srv
// reached at endpoint. The machine's AWS_* variables (a CA bundle, say) and
// rclone settings are not rclone's business here: its whole configuration
// is the variables returned.
func rcloneS3Env(srv *s3test.Server, endpoint string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"RCLONE_CONFIG_BENCHS3_TYPE=s3", "RCLONE_CONFIG_BENCHS3_PROVIDER=Other",
		"RCLONE_CONFIG_BENCHS3_ENDPOINT="+endpoint, "RCLONE_CONFIG_BENCHS3_REGION="+srv.Region,
		"RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID="+srv.AccessKey, "RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY="+srv.SecretKey,
		"RCLONE_CONFIG_BENCHS3_FORCE_PATH_STYLE=true", "RCLONE_CONFIG=/dev/null")
	if srv.CAFile != "" {
		env = append(env, "RCLONE_CA_CERT="+srv.CAFile)
	}
	return env
}

// rcloneSFTPEnv is env with the remote benchsftp: the Skiff server at addr,
// as the benchmark user, hashes off (shell_type none), as OpenSSH's clients
// check none either.
func (r *runner) rcloneSFTPEnv(env []string, addr, knownHosts string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return append(append([]string(nil), env...),
		"RCLONE_CONFIG_BENCHSFTP_TYPE=sftp", "RCLONE_CONFIG_BENCHSFTP_HOST="+host,
		"RCLONE_CONFIG_BENCHSFTP_PORT="+port, "RCLONE_CONFIG_BENCHSFTP_USER="+BenchLogin,
		"RCLONE_CONFIG_BENCHSFTP_KEY_FILE="+r.clientKey, "RCLONE_CONFIG_BENCHSFTP_KNOWN_HOSTS_FILE="+knownHosts,
		"RCLONE_CONFIG_BENCHSFTP_SHELL_TYPE=none")
}

// putEmptyObjects writes n empty objects under prefix, 32 at a time.
func putEmptyObjects(ctx context.Context, srv *s3test.Server, prefix string, n int) error {
	client := srv.Client()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(srv.Bucket),
				Key: aws.String(fmt.Sprintf("%sfile-%05d.txt", prefix, i)), Body: strings.NewReader("")})
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// sftpBatch runs OpenSSH's sftp client with batch against addr as the
// benchmark user, and returns how long it took.
func (r *runner) sftpBatch(ctx context.Context, addr, knownHosts, batch string, extra ...string) (time.Duration, error) {
	host, port, _ := net.SplitHostPort(addr)
	args := append(append(sftpOptions(port, r.clientKey, knownHosts), "-b", "-"), extra...) // the batch on stdin
	cmd := exec.CommandContext(ctx, "sftp", append(args, BenchLogin+"@"+host)...)
	cmd.Stdin = strings.NewReader(batch)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("sftp %q: %v: %s", strings.TrimSpace(batch), err, lastLines(out.String(), 5))
	}
	d := time.Since(start)
	// The client's CPU time includes its ssh process (reaped by sftp).
	r.log.Info("sftp", "batch", strings.TrimSpace(batch), "s", d.Seconds(), "client CPU s", (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds())
	return d, nil
}

// probeCipher reports the cipher and MAC that OpenSSH's client, with its
// defaults, agrees on with the server at addr ("aes128-ctr, MAC
// hmac-sha2-256-etm@openssh.com").
func (r *runner) probeCipher(ctx context.Context, addr, knownHosts string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, "sftp", append(sftpOptions(port, r.clientKey, knownHosts), "-v", "-b", "/dev/null", BenchLogin+"@"+host)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("sftp -v: %v: %s", err, lastLines(out.String(), 5))
	}
	cipher, mac := negotiatedAlgorithms(out.String())
	if cipher == "" {
		return "", fmt.Errorf("no cipher in the client's log: %s", lastLines(out.String(), 5))
	}
	return cipher + ", MAC " + mac, nil
}

// writeKnownHostsFor writes a known_hosts file for one Skiff server.
func (r *runner) writeKnownHostsFor(s *skiffServer) (string, error) {
	if s.hostKey == nil {
		return "", errors.New("the server printed no host key")
	}
	host, port, _ := net.SplitHostPort(s.addr)
	path := filepath.Join(r.work, "known_hosts_"+strings.NewReplacer(":", "_", ".", "_").Replace(s.addr))
	return path, os.WriteFile(path, fmt.Appendf(nil, "[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(s.hostKey)), 0o600)
}
