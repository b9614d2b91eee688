package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/bytesize"
)

// The hostile benchmark's server configuration: a reply budget small
// enough that the floods spend it, and a handle cap per connection that
// the hoarders reach. Per-user and per-account handle caps are lifted so
// that the attacker's every connection reaches its own cap.
const (
	hostileReplyBudget  = 64 << 20
	hostileReplyPerConn = 8 << 20
	hostileHandleCap    = 32
	hostilePipelined    = 64 // READs each flooding connection sends unanswered
)

// hostile measures what an attacker costs the others: N connections of a
// user of another account pipelining 255 KiB reads without ever reading a
// reply, plus N connections holding open files up to their cap, while the
// benchmark user downloads the source file. It reports the server's RSS
// against the reply budget + 128 MiB, and the honest download's speed
// under attack against the same download without it, in the same run.
func (r *runner) hostile(ctx context.Context) error {
	sftpBin, err := exec.LookPath("sftp")
	if err != nil {
		if r.cfg.Smoke {
			r.log.Warn("smoke run skips hostile: the OpenSSH sftp client is not installed")
			return nil
		}
		return errors.New("the OpenSSH sftp client is needed: apt-get install openssh-client")
	}
	n := r.cfg.HostileConns
	args := []string{"-data", r.skiffData, "-authorized-keys", r.authorized, "-pprof", "127.0.0.1:0",
		"-reply-memory", strconv.Itoa(hostileReplyBudget), "-reply-memory-per-connection", strconv.Itoa(hostileReplyPerConn),
		"-handles-per-connection", strconv.Itoa(hostileHandleCap),
		"-handles-per-user", "1000000", "-handles-per-account", "1000000"}
	srv, err := startSkiffServer(ctx, r.cfg.ServerCommand, filepath.Join(r.work, "skiff-hostile.log"), args...)
	if err != nil {
		return err
	}
	defer srv.proc.stop()

	if err := os.MkdirAll(r.skiffHome, 0o750); err != nil {
		return err
	}
	src := filepath.Join(r.skiffHome, "src.bin")
	if err := writeRandomFile(src, r.cfg.FileSize); err != nil {
		return err
	}
	defer os.Remove(src)
	// The attacker reads its own file: hostilePipelined reads of 255 KiB.
	attackerHome := filepath.Join(r.skiffData, HostileAccountID, "users", HostileUserID)
	if err := os.MkdirAll(attackerHome, 0o750); err != nil {
		return err
	}
	if err := writeRandomFile(filepath.Join(attackerHome, "big.bin"), hostilePipelined*255<<10); err != nil {
		return err
	}
	knownHosts, err := r.writeKnownHosts()
	if err != nil {
		return err
	}
	// writeKnownHosts pins the data-path servers' keys; add this one's.
	if err := appendKnownHost(knownHosts, srv); err != nil {
		return err
	}
	t := &target{name: "Skiff", addr: srv.addr, user: BenchLogin, pid: srv.proc.pid(), src: "src.bin", skiff: srv}

	measure := func(label string) ([]transferResult, error) {
		var rs []transferResult
		for range r.cfg.Reps {
			res, err := r.transfer(ctx, sftpBin, knownHosts, t, DefaultCipher, false, 1, "")
			if err != nil {
				return nil, fmt.Errorf("%s download: %w", label, err)
			}
			r.log.Info("hostile", "phase", label, "MB/s", fmt.Sprintf("%.0f", res.mbps), "peak_rss", mib(res.peakRSS))
			rs = append(rs, res)
		}
		return rs, nil
	}
	unloaded, err := measure("unloaded")
	if err != nil {
		return err
	}

	signer, err := loadSigner(r.clientKey)
	if err != nil {
		return err
	}
	cfg := r.clientConfig(HostileLogin, ssh.PublicKeys(signer), srv.hostKey)
	att := &attack{}
	defer att.close()
	rss0, _ := currentRSS(t.pid)
	start := time.Now()
	floods, hoards, err := att.run(ctx, srv.addr, cfg, n)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the floods fill what they can
	rssAttack, err := currentRSS(t.pid)
	if err != nil {
		return err
	}
	r.log.Info("hostile", "phase", "attack set up", "floods", floods, "handles_held", hoards,
		"took", time.Since(start).Round(time.Millisecond), "rss", mib(rssAttack))
	loaded, err := measure("under attack")
	if err != nil {
		return err
	}
	after, err := measure("unloaded again")
	if err != nil {
		return err
	}
	att.close()

	base, hit := summarize(append(unloaded, after...)), summarize(loaded)
	peak := int64(0)
	for _, res := range loaded {
		peak = max(peak, res.peakRSS)
	}
	bound := int64(hostileReplyBudget + 128<<20)
	sec := r.report.section(fmt.Sprintf("Hostile clients: %d connections pipelining reads, %d holding open files, one honest %s download",
		n, n, bytesize.Exact(r.cfg.FileSize)),
		"measure", "value", "goal")
	sec.row("flooding connections (each "+strconv.Itoa(hostilePipelined)+" × 255 KiB READs, replies never read)", fmt.Sprint(floods), fmt.Sprint(n))
	sec.row(fmt.Sprintf("open files held (cap %d per connection)", hostileHandleCap), fmt.Sprint(hoards), fmt.Sprint(n*hostileHandleCap))
	sec.row("server RSS before the attack", mib(rss0), "")
	sec.row("server RSS with the attack set up", mib(rssAttack), "")
	sec.row("server peak RSS during the honest downloads under attack", mib(peak), "< "+mib(bound)+" (reply budget "+mib(hostileReplyBudget)+" + 128 MiB)")
	sec.row("honest download, unloaded (median of before and after)", fmt.Sprintf("%.0f MB/s", base.mbps), "")
	sec.row("honest download under attack (median)", fmt.Sprintf("%.0f MB/s", hit.mbps), "")
	sec.row("under attack / unloaded", ratio(hit.mbps, base.mbps), "≥ 0.80")
	sec.note("OpenSSH sftp client, default cipher, %d repetitions per phase, against a data-path server started with "+
		"-reply-memory %d -reply-memory-per-connection %d -handles-per-connection %d. The attacker is a user of another "+
		"account (x/crypto clients in the driver process). Peak RSS is VmHWM, reset before each download.",
		r.cfg.Reps, hostileReplyBudget, hostileReplyPerConn, hostileHandleCap)
	return nil
}

// appendKnownHost adds s's host key to a known_hosts file.
func appendKnownHost(path string, s *skiffServer) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	host, port, _ := net.SplitHostPort(s.addr)
	_, err = fmt.Fprintf(f, "[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(s.hostKey))
	return err
}

// attack is the attacker's connections.
type attack struct {
	mu      sync.Mutex
	clients []*ssh.Client
}

func (a *attack) keep(c *ssh.Client) {
	a.mu.Lock()
	a.clients = append(a.clients, c)
	a.mu.Unlock()
}

func (a *attack) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.clients {
		c.Close()
	}
	a.clients = nil
}

// run opens n flooding and n hoarding connections, 8 at a time, and
// returns how many floods started and how many handles the hoarders hold.
func (a *attack) run(ctx context.Context, addr string, cfg *ssh.ClientConfig, n int) (floods, handles int, err error) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range 2 * n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			held, err := a.one(ctx, addr, cfg, i%2 == 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && firstErr == nil:
				firstErr = err
			case err == nil && i%2 == 0:
				floods++
			case err == nil:
				handles += held
			}
		})
	}
	wg.Wait()
	return floods, handles, firstErr
}

// one opens an attacking connection: a flood (pipelined READs whose
// replies are never read) or a hoard (open files until refused).
func (a *attack) one(ctx context.Context, addr string, cfg *ssh.ClientConfig, flood bool) (int, error) {
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return 0, err
	}
	a.keep(c)
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		return 0, err
	}
	go ssh.DiscardRequests(reqs)
	if ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{"sftp"})); err != nil || !ok {
		return 0, fmt.Errorf("sftp subsystem refused: %v", err)
	}
	p := &rawSFTP{ch: ch}
	if err := p.send(1, nil, 3); err != nil { // INIT, version 3 (no request ID: the field is the version)
		return 0, err
	}
	if _, _, err := p.recv(); err != nil {
		return 0, err
	}
	id := uint32(1)
	open := func() ([]byte, error) {
		id++
		if err := p.send(3, str("/My Files/big.bin"), id, 1, 0); err != nil { // OPEN, read, no attributes
			return nil, err
		}
		typ, body, err := p.recv()
		if err != nil {
			return nil, err
		}
		if typ != 102 { // HANDLE
			return nil, nil
		}
		return body[8:], nil
	}
	if !flood {
		held := 0
		for range hostileHandleCap + 1 {
			h, err := open()
			if err != nil {
				return held, err
			}
			if h == nil {
				break // refused: the connection is at its cap
			}
			held++
		}
		return held, nil
	}
	h, err := open()
	if err != nil || h == nil {
		return 0, fmt.Errorf("flood: open failed: %v", err)
	}
	// The requests go from a goroutine: once the server stops reading
	// them, the SSH window stops this writer, as it would a real client.
	go func() {
		for i := range hostilePipelined {
			off := make([]byte, 8)
			binary.BigEndian.PutUint64(off, uint64(i)*255<<10)
			if p.send(5, append(append(str(string(h)), off...), 0, 3, 0xfc, 0), uint32(100+i)) != nil { // READ 255 KiB
				return
			}
		}
	}()
	return 0, nil
}

// rawSFTP writes SFTP packets on a channel and reads them back whole.
type rawSFTP struct {
	ch ssh.Channel
}

// send writes a packet: type, the request ID (or, for INIT, the
// version), the fields, and any further uint32s.
func (p *rawSFTP) send(typ byte, fields []byte, id uint32, more ...uint32) error {
	b := make([]byte, 4, 64+len(fields))
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, fields...)
	for _, v := range more {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_, err := p.ch.Write(b)
	return err
}

// recv reads one packet: its type and what follows it.
func (p *rawSFTP) recv() (byte, []byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(p.ch, l[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(p.ch, body); err != nil {
		return 0, nil, err
	}
	return body[0], body[1:], nil
}

// str encodes an SFTP string.
func str(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}
