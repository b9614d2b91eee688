// Package vfs is the virtual file tree every SFTP session sees, served with
// github.com/pkg/sftp's request server:
//
//	/My Files/                  the user's home, and the project folders they made (absent for jailed users)
//	/Projects Shared With Me/   read-only; one folder per project shared with the user
//
// Client paths are cleaned once (CleanPath), mapped to a tree from package
// storage and a path inside it, and every file system call goes through that
// tree's *os.Root, so nothing outside it can be reached. Inside shared folders
// each operation is checked against the user's Rights, re-read at most every
// Config.CacheTTL so changes reach open sessions.
package vfs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/storage"
)

// DefaultCacheTTL is how long a positive Gate answer and the list of shared
// folders are reused when Config.CacheTTL is zero.
const DefaultCacheTTL = time.Second

// maxTxPacket is the largest read the server answers in one packet; the
// 1 KiB kept free is room for headers inside the 256 KiB message limit that
// OpenSSH and pkg/sftp enforce. pkg/sftp (v1.13.12) cannot advertise
// limits@openssh.com itself; the wire shim (wire.go) answers it with this
// size, so OpenSSH clients (≥ 8.6) use 255 KiB requests; pkg/sftp clients
// use MaxPacketUnchecked. Fewer, larger requests cost less per byte.
const maxTxPacket = 256*1024 - 1024

// ErrClosed is returned by Serve on a session that was closed.
var ErrClosed = errors.New("vfs: session closed")

// ErrDenied wraps the Gate's error when the gate ended the session.
var ErrDenied = errors.New("vfs: session no longer allowed")

// Config is what a Session is built from. Storage and Gate are required.
type Config struct {
	AccountID string
	UserID    string
	// Jailed users see only /Projects Shared With Me/.
	Jailed  bool
	Storage storage.Storage
	Gate    Gate
	// Shares lists the folders shared with the user; nil means none.
	Shares Shares
	// CacheTTL bounds how stale a Gate or Shares answer may be
	// (DefaultCacheTTL when zero).
	CacheTTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives internal failures, which clients only see as
	// "failure" (slog.Default when nil).
	Logger *slog.Logger
}

// Session is one SSH connection's view of the file tree. Serve it on each
// "sftp" subsystem channel; Close it when the connection ends.
type Session struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // ends when the session ends; for calls outside a request
	cancel context.CancelFunc
	stop   func() bool // stops the parent context's watch
	start  time.Time   // mod time of the virtual directories

	gate   gateCache
	shares sharesCache

	isDenied atomic.Bool // denied != nil, read on every packet written

	mu       sync.Mutex
	closed   bool
	denied   error // the gate's refusal, once it ended the session
	home     *os.Root
	folders  map[string]*os.Root          // shared folder roots by folder ID
	uploads  map[string]*handle           // atomic uploads in progress, by virtual path
	channels map[*sessionChannel]struct{} // being served
	serving  sync.WaitGroup
}

// NewSession builds the session of one SSH connection. It ends (every Serve
// returns) when ctx is done, when the Gate refuses, or on Close.
func NewSession(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.Storage == nil || cfg.Gate == nil {
		return nil, errors.New("vfs: Storage and Gate are required")
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Session{
		cfg:      cfg,
		log:      log.With("account", cfg.AccountID, "user", cfg.UserID),
		start:    cfg.Now(),
		folders:  make(map[string]*os.Root),
		uploads:  make(map[string]*handle),
		channels: make(map[*sessionChannel]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.gate = gateCache{gate: cfg.Gate, ttl: cfg.CacheTTL, now: cfg.Now}
	s.shares = sharesCache{shares: cfg.Shares, ttl: cfg.CacheTTL, now: cfg.Now}
	s.stop = context.AfterFunc(ctx, s.terminate)
	return s, nil
}

// StartDirectory is where a client starts: /My Files, or the shared
// folders' mount point for jailed users.
func (s *Session) StartDirectory() string {
	if s.cfg.Jailed {
		return SharedMountPath
	}
	return MyFilesPath
}

// Serve runs the SFTP protocol on channel until the client or the session
// ends it, then closes channel. Uploads still open are discarded. It returns
// nil when the client (even abruptly), the context or Close ended it, an
// error wrapping ErrDenied when the Gate did, ErrClosed if the session had
// already ended.
func (s *Session) Serve(channel io.ReadWriteCloser) error {
	s.mu.Lock()
	if s.closed || s.denied != nil {
		s.mu.Unlock()
		channel.Close()
		return ErrClosed
	}
	wire := newWireChannel(channel, wireConfig{Limits: pkgSFTPLimits(maxTxPacket)})
	ch := &sessionChannel{ReadWriteCloser: wire, s: s}
	srv := sftp.NewRequestServer(ch, handlers{s}.sftp(),
		sftp.WithRSAllocator(),
		sftp.WithStartDirectory(s.StartDirectory()),
		sftp.WithRSMaxTxPacket(maxTxPacket),
	)
	s.channels[ch] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()

	err := srv.Serve()
	channel.Close()

	s.mu.Lock()
	delete(s.channels, ch)
	denied, closed := s.denied, s.closed
	s.mu.Unlock()
	s.serving.Done()

	switch {
	case denied != nil:
		return fmt.Errorf("%w: %w", ErrDenied, denied)
	case closed || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// The client went away; pkg/sftp says "unexpected" when handles
		// were still open, and those uploads have been discarded.
		return nil
	}
	return err
}

// Close ends every Serve, waits for them to return (discarding uploads still
// open) and releases the session's trees. It is safe to call more than once.
func (s *Session) Close() error {
	s.terminate()
	s.serving.Wait()
	s.stop()
	s.cancel()

	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.home != nil {
		errs = append(errs, s.home.Close())
		s.home = nil
	}
	for id, r := range s.folders {
		errs = append(errs, r.Close())
		delete(s.folders, id)
	}
	return errors.Join(errs...)
}

// terminate closes every channel being served without waiting for its
// server, which then closes the handles still open, discarding their
// uploads. It closes the channels themselves rather than going through
// pkg/sftp, whose Close waits for a send in progress: one blocked on a
// client that stopped reading would hang it.
func (s *Session) terminate() {
	s.mu.Lock()
	s.closed = true
	chans := make([]*sessionChannel, 0, len(s.channels))
	for ch := range s.channels {
		chans = append(chans, ch)
	}
	s.mu.Unlock()
	for _, ch := range chans {
		ch.ReadWriteCloser.Close()
	}
}

// deny records the Gate's refusal. The channels close themselves once the
// refusal has been sent (see sessionChannel), so the client reads
// "permission denied" rather than a dropped connection. It is called from
// request handlers, where waiting for the servers would deadlock.
func (s *Session) deny(err error) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denied != nil {
		return false
	}
	s.denied = err
	s.isDenied.Store(true)
	return true
}

// sessionChannel is the channel as the request server sees it. Once the
// session is denied it closes the channel right after the next status
// packet (the refusal, or one queued before it) has been written whole,
// which ends the server loop and discards open uploads.
//
// pkg/sftp writes each packet as a header Write (length, type, …) and a
// payload Write, one packet at a time under its send lock, so counting
// bytes is enough to find packet ends.
type sessionChannel struct {
	io.ReadWriteCloser
	s      *Session
	left   int  // bytes of the current packet still to be written
	status bool // the current packet is SSH_FXP_STATUS
}

const fxpStatus = 101 // SSH_FXP_STATUS

func (c *sessionChannel) Write(p []byte) (int, error) {
	if c.left == 0 {
		// A packet starts. If its header were ever split, treat the write
		// as a boundary: closing early beats never closing.
		c.status = true
		if len(p) >= 5 {
			c.left = int(binary.BigEndian.Uint32(p)) + 4
			c.status = p[4] == fxpStatus
		}
	}
	n, err := c.ReadWriteCloser.Write(p)
	c.left = max(c.left-n, 0)
	if err == nil && c.left == 0 && c.status && c.s.isDenied.Load() {
		c.ReadWriteCloser.Close()
	}
	return n, err
}
