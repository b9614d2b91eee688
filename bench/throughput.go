package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/bytesize"
)

// target is one server as the transfer benchmark drives it.
type target struct {
	name string // "Skiff" or "OpenSSH"
	addr string
	user string
	pid  int
	// forks is true for sshd: its sessions run in child processes, so
	// memory is sampled over the process tree and CPU read once the
	// children have been reaped.
	forks bool
	// src is the source file's path as the client names it; upload(i) the
	// path of stream i's upload as the client names it, and uploaded(i)
	// where that file lands on disk.
	src      string
	upload   func(i int) string
	uploaded func(i int) string
	skiff    *skiffServer // for profiles
}

// transferResult is one measured transfer (all its streams together).
type transferResult struct {
	mbps     float64 // 10^6 bytes per second, all streams together
	cpuPerGB float64 // server CPU seconds per 10^9 bytes moved
	peakRSS  int64
	cipher   string // as negotiated, from the client's debug output
}

func (r *runner) targets() []*target {
	var ts []*target
	for _, sk := range r.skiffs {
		ts = append(ts, &target{
			name:     variantName(sk.variant),
			addr:     sk.addr,
			user:     BenchLogin,
			pid:      sk.proc.pid(),
			src:      "src.bin", // relative to the start directory, /My Files
			upload:   func(i int) string { return fmt.Sprintf("up-%d.bin", i) },
			uploaded: func(i int) string { return filepath.Join(r.skiffHome, fmt.Sprintf("up-%d.bin", i)) },
			skiff:    sk,
		})
	}
	if r.sshd != nil {
		ts = append(ts, &target{
			name:     openSSH,
			addr:     r.sshd.addr,
			user:     r.sshd.user,
			pid:      r.sshd.proc.pid(),
			forks:    true,
			src:      filepath.Join(r.skiffHome, "src.bin"), // the very same file
			upload:   func(i int) string { return filepath.Join(r.sshdDir, fmt.Sprintf("up-%d.bin", i)) },
			uploaded: func(i int) string { return filepath.Join(r.sshdDir, fmt.Sprintf("up-%d.bin", i)) },
		})
	}
	return ts
}

const openSSH = "OpenSSH"

// variantName is how the report names a Skiff variant.
func variantName(v string) string {
	switch v {
	case VariantNoChaCha:
		return "Skiff, no ChaCha20 offered"
	case VariantMetrics:
		return "Skiff, metrics on"
	}
	return "Skiff"
}

// runs says whether target t takes part in the case of cipher. Where the
// client chooses, the stock variant would choose ChaCha20 like the forced
// ChaCha20 case, so only the no-ChaCha20 one runs (when present); where the
// cipher is forced, the no-ChaCha20 variant is the stock one (or cannot
// serve ChaCha20 at all), so it sits out.
func (r *runner) runs(t *target, cipher string) bool {
	if t.skiff == nil {
		return true
	}
	if t.skiff.variant == VariantNoChaCha {
		return cipher == DefaultCipher
	}
	return cipher != DefaultCipher || !slices.Contains(r.cfg.SkiffVariants, VariantNoChaCha)
}

func (r *runner) throughput(ctx context.Context) error {
	sftpBin, err := exec.LookPath("sftp")
	if err != nil {
		if r.cfg.Smoke {
			r.log.Warn("smoke run skips throughput: the OpenSSH sftp client is not installed (apt-get install openssh-client)")
			return nil
		}
		return errors.New("the OpenSSH sftp client is needed: apt-get install openssh-client")
	}
	if err := os.MkdirAll(r.skiffHome, 0o750); err != nil {
		return err
	}
	src := filepath.Join(r.skiffHome, "src.bin")
	if err := writeRandomFile(src, r.cfg.FileSize); err != nil {
		return err
	}
	defer os.Remove(src)
	knownHosts, err := r.writeKnownHosts()
	if err != nil {
		return err
	}

	sec := r.report.section(fmt.Sprintf("Transfer throughput: OpenSSH sftp client, %s per stream, median of %d",
		bytesize.Exact(r.cfg.FileSize), r.cfg.Reps),
		"cipher", "direction", "streams", "Skiff server", "Skiff MB/s", "OpenSSH MB/s", "Skiff/OpenSSH",
		"Skiff CPU s/GB", "OpenSSH CPU s/GB", "Skiff peak RSS", "OpenSSH peak RSS")
	targets := r.targets()
	for _, cipher := range r.cfg.Ciphers {
		for _, upload := range []bool{false, true} {
			for _, streams := range r.cfg.Streams {
				results := make(map[string][]transferResult)
				if r.cfg.ProfileDir != "" {
					// An extra, uncounted run: profiling costs a few percent.
					name := fmt.Sprintf("cpu-%s-%s-%d.pprof", shortCipher(cipher), direction(upload), streams)
					for _, t := range targets {
						if t.skiff == nil || !r.runs(t, cipher) {
							continue
						}
						path := filepath.Join(r.cfg.ProfileDir, t.skiff.variant+"-"+name)
						if _, err := r.transfer(ctx, sftpBin, knownHosts, t, cipher, upload, streams, path); err != nil {
							return err
						}
					}
				}
				for rep := range r.cfg.Reps {
					// Alternate which server goes first, so that a drift
					// in the machine's load does not favour one of them.
					order := targets
					if rep%2 == 1 {
						order = reversed(targets)
					}
					for _, t := range order {
						if !r.runs(t, cipher) {
							continue
						}
						res, err := r.transfer(ctx, sftpBin, knownHosts, t, cipher, upload, streams, "")
						if err != nil {
							return fmt.Errorf("%s %s %s ×%d: %w", t.name, cipher, direction(upload), streams, err)
						}
						r.log.Info("transfer", "server", t.name, "cipher", res.cipher, "dir", direction(upload),
							"streams", streams, "MB/s", fmt.Sprintf("%.0f", res.mbps),
							"cpu_s_per_GB", fmt.Sprintf("%.2f", res.cpuPerGB), "peak_rss", mib(res.peakRSS))
						results[t.name] = append(results[t.name], res)
					}
				}
				base := summarize(results[openSSH])
				for _, t := range targets {
					if t.skiff == nil || !r.runs(t, cipher) {
						continue
					}
					sk := summarize(results[t.name])
					label := shortCipher(cipher)
					if cipher == DefaultCipher {
						label = "default → " + shortCipher(sk.cipher)
						if base.cipher != "" && base.cipher != sk.cipher {
							label += " (OpenSSH: " + shortCipher(base.cipher) + ")"
						}
					}
					sec.row(label, direction(upload), fmt.Sprint(streams), t.name,
						fmt.Sprintf("%.0f", sk.mbps), num(base.mbps, "%.0f"), ratio(sk.mbps, base.mbps),
						fmt.Sprintf("%.2f", sk.cpuPerGB), num(base.cpuPerGB, "%.2f"),
						mib(sk.peakRSS), numMiB(base.peakRSS))
				}
			}
		}
	}
	sec.note("MB/s is 10^6 bytes per second over all streams, from starting the clients to the last one's exit " +
		"(connection set-up included). CPU s/GB is the server's user+system CPU (for sshd including its reaped " +
		"per-connection children) per 10^9 bytes. Peak RSS: Skiff's VmHWM, reset before each transfer (after returning freed heap to the OS); for " +
		"OpenSSH the sum over sshd's process tree, sampled every 20 ms.")
	return nil
}

func summarize(rs []transferResult) transferResult {
	if len(rs) == 0 {
		return transferResult{}
	}
	var mbps, cpu []float64
	var rss []int64
	for _, x := range rs {
		mbps = append(mbps, x.mbps)
		cpu = append(cpu, x.cpuPerGB)
		rss = append(rss, x.peakRSS)
	}
	return transferResult{mbps: median(mbps), cpuPerGB: median(cpu), peakRSS: median(rss), cipher: rs[0].cipher}
}

// transfer runs streams sftp clients at once against t and measures them.
// With profile set, it brackets the transfer with a CPU profile of Skiff.
func (r *runner) transfer(ctx context.Context, sftpBin, knownHosts string, t *target, cipher string, upload bool, streams int, profile string) (transferResult, error) {
	host, port, _ := net.SplitHostPort(t.addr)
	cmds := make([]*exec.Cmd, streams)
	stderrs := make([]*strings.Builder, streams)
	for i := range streams {
		line := fmt.Sprintf("get %q /dev/null\n", t.src)
		if upload {
			line = fmt.Sprintf("put %q %q\n", filepath.Join(r.skiffHome, "src.bin"), t.upload(i))
		}
		args := append(sftpOptions(port, r.clientKey, knownHosts), "-v", "-b", "-") // the batch on stdin
		if cipher != DefaultCipher {
			args = append(args, "-o", "Ciphers="+cipher)
		}
		args = append(args, t.user+"@"+host)
		cmd := exec.CommandContext(ctx, sftpBin, args...)
		cmd.Stdin = strings.NewReader(line)
		stderrs[i] = &strings.Builder{}
		cmd.Stderr = stderrs[i]
		cmds[i] = cmd
	}

	var sampler *rssSampler
	if t.forks {
		sampler = sampleRSS(t.pid, 20*time.Millisecond)
	} else {
		if err := t.skiff.profile("free", ""); err != nil {
			return transferResult{}, err
		}
		if err := resetPeakRSS(t.pid); err != nil {
			return transferResult{}, fmt.Errorf("reset peak RSS: %w", err)
		}
	}
	cpu0, err := processCPU(t.pid)
	if err != nil {
		return transferResult{}, err
	}
	if profile != "" {
		if err := t.skiff.profile("cpu-start", profile); err != nil {
			return transferResult{}, err
		}
	}

	start := time.Now()
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { errs[i] = cmd.Run() })
	}
	wg.Wait()
	elapsed := time.Since(start)

	if profile != "" {
		if err := t.skiff.profile("cpu-stop", ""); err != nil {
			return transferResult{}, err
		}
	}
	if t.forks {
		if !waitNoDescendants(t.pid, 10*time.Second) {
			r.log.Warn("sshd children still running after the transfer; their CPU is missed")
		}
	} else {
		// Let the server finish closing the connections.
		time.Sleep(20 * time.Millisecond)
	}
	cpu1, err := processCPU(t.pid)
	if err != nil {
		return transferResult{}, err
	}
	var peak int64
	if sampler != nil {
		peak = sampler.Stop()
	} else if peak, err = peakRSS(t.pid); err != nil {
		return transferResult{}, err
	}
	for i, err := range errs {
		if err != nil {
			return transferResult{}, fmt.Errorf("sftp: %v\n%s", err, lastLines(stderrs[i].String(), 15))
		}
	}
	for i := range streams {
		if upload {
			fi, err := os.Stat(t.uploaded(i))
			if err != nil {
				return transferResult{}, fmt.Errorf("upload %d: %w", i, err)
			}
			if fi.Size() != r.cfg.FileSize {
				return transferResult{}, fmt.Errorf("upload %d: %d bytes on the server, want %d", i, fi.Size(), r.cfg.FileSize)
			}
			if err := os.Remove(t.uploaded(i)); err != nil {
				return transferResult{}, err
			}
		}
		// A download's success is the client's exit status: in batch
		// mode sftp exits non-zero when a command fails.
	}
	bytes := float64(r.cfg.FileSize) * float64(streams)
	negotiated, _ := negotiatedAlgorithms(stderrs[0].String())
	return transferResult{
		mbps:     bytes / 1e6 / elapsed.Seconds(),
		cpuPerGB: (cpu1 - cpu0).Seconds() / (bytes / 1e9),
		peakRSS:  peak,
		cipher:   negotiated,
	}, nil
}

// sftpOptions are the OpenSSH client's options for the benchmark's key and
// a server's known host key, and nothing from the machine's configuration
// (-F /dev/null: not the user's ssh_config).
func sftpOptions(port, key, knownHosts string) []string {
	return []string{"-P", port, "-i", key, "-F", "/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "StrictHostKeyChecking=yes", "-o", "Compression=no"}
}

// negotiatedAlgorithms finds the server-to-client cipher and MAC in ssh -v
// output ("debug1: kex: server->client cipher: aes128-gcm@openssh.com
// MAC: <implicit> compression: none"); "" where it has none.
func negotiatedAlgorithms(debug string) (cipher, mac string) {
	const marker = "kex: server->client cipher: "
	_, rest, ok := strings.Cut(debug, marker)
	if !ok {
		return "", ""
	}
	f := strings.Fields(rest) // CIPHER MAC: MAC compression: …
	if len(f) > 0 {
		cipher = f[0]
	}
	if len(f) > 2 && f[1] == "MAC:" {
		mac = f[2]
	}
	return cipher, mac
}

// writeKnownHosts pins both servers' host keys for the sftp client.
func (r *runner) writeKnownHosts() (string, error) {
	var b strings.Builder
	line := func(addr string, key []byte) {
		host, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(&b, "[%s]:%s %s", host, port, key)
	}
	for _, sk := range r.skiffs {
		line(sk.addr, ssh.MarshalAuthorizedKey(sk.hostKey))
	}
	if r.sshd != nil {
		pub, err := os.ReadFile(filepath.Join(r.sshdDir, "sshd_host_ed25519_key.pub"))
		if err != nil {
			return "", err
		}
		line(r.sshd.addr, pub)
	}
	path := filepath.Join(r.work, "known_hosts")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// writeRandomFile writes size incompressible bytes. ChaCha8 makes them at
// several GB/s, so a 1 GiB source costs well under a second.
func writeRandomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var seed [32]byte
	copy(seed[:], "skiffbench: incompressible data")
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.CopyN(w, rand.NewChaCha8(seed), size); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func direction(upload bool) string {
	if upload {
		return "upload"
	}
	return "download"
}

// shortCipher drops the @openssh.com suffix for the table.
func shortCipher(c string) string {
	c, _, _ = strings.Cut(c, "@")
	return c
}

func num(v float64, format string) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func numMiB(v int64) string {
	if v == 0 {
		return "–"
	}
	return mib(v)
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sshClientVersion is the OpenSSH client's version line.
func sshClientVersion() string {
	out, err := exec.Command("ssh", "-V").CombinedOutput()
	if err != nil {
		return "OpenSSH client not found"
	}
	return strings.TrimSpace(string(out))
}
