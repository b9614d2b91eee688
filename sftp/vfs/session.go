// Package vfs is the virtual file tree every SFTP session sees, and the
// SFTP version 3 server that serves it on each channel (server.go, with a
// handler per request in requests.go):
//
//	/My Files/                  the user's home, and the project folders they made (absent for jailed users)
//	/Projects Shared With Me/   read-only; one folder per project shared with the user
//
// Client paths are cleaned once (CleanPath), mapped to a tree from package
// storage and a path inside it, and every file system call goes through that
// storage.Tree (on the local disk an os.Root), so nothing outside it can be
// reached. Inside shared folders each operation is checked against the
// user's Rights, re-read at the next operation once Config.SharesChanged
// says they changed, and at most every Config.CacheTTL otherwise.
package vfs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/storage"
)

// DefaultCacheTTL is how long a positive Gate answer and the list of shared
// folders are reused when Config.CacheTTL is zero.
const DefaultCacheTTL = time.Second

// maxTxPacket is the largest read the server answers in one packet and the
// largest write it accepts; the 1 KiB kept free is room for the fields
// around the data inside the 256 KiB packet limit, as in OpenSSH. The
// server announces it in its answer to limits@openssh.com, so OpenSSH
// clients (≥ 8.6) use 255 KiB requests; pkg/sftp clients use
// MaxPacketUnchecked. Fewer, larger requests cost less per byte.
const maxTxPacket = 256*1024 - 1024

// ErrClosed is returned by Serve on a session that was closed.
var ErrClosed = errors.New("vfs: session closed")

// ErrDenied wraps the Gate's error when the gate ended the session.
var ErrDenied = errors.New("vfs: session no longer allowed")

// Config is what a Session is built from. Storage and Gate are required.
type Config struct {
	AccountID string
	UserID    string
	// Login names the user in listings: the owner and group of every
	// entry in an "ls -l" line ("user" when empty).
	Login string
	// Jailed users see only /Projects Shared With Me/.
	Jailed  bool
	Storage storage.Storage
	Gate    Gate
	// Shares lists the folders shared with the user; nil means none.
	Shares Shares
	// SharesChanged, when set, is bumped whenever the user's shared
	// folders or rights in them may have changed: the session then asks
	// Shares again at its next operation instead of when its copy is
	// CacheTTL old. Operations that start after the bump see the new
	// rights; one already past its lookup finishes with the old ones.
	SharesChanged *Generation
	// Quota is charged for what the session stores; nil: no quotas, and
	// statvfs shows the file system holding the account.
	Quota Quota
	// CacheTTL bounds how stale a Gate or Shares answer may be
	// (DefaultCacheTTL when zero).
	CacheTTL time.Duration
	// SharesTTL, when set, bounds the Shares answer's age instead of
	// CacheTTL (tests that show SharesChanged at work make it long).
	SharesTTL time.Duration
	// Grace is how long the session keeps its last known rights while the
	// Gate cannot answer (DefaultGrace when zero); see Gate.
	Grace time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives internal failures, which clients only see as
	// "failure" (slog.Default when nil).
	Logger *slog.Logger

	// Handles counts the connection's open handles (files and directory
	// listings) against the process's caps; nil caps nothing beyond the
	// 1,024 per channel. An open over a cap fails with the LimitError's
	// message ("too many open files for this user (limit 100)").
	Handles *Holder
	// Replies is the connection's share of the process's reply memory
	// budget; nil bounds a channel only by its 16 queued replies.
	Replies *ReplyShare
	// Metrics counts requests, bytes and transfers; nil counts nothing.
	Metrics *Metrics
	// QuotaPoolIdle is how long the session keeps room it reserved in the
	// Quota that no write draws on (DefaultQuotaPoolIdle when zero); see
	// pool.go.
	QuotaPoolIdle time.Duration
	// Activity is told what the session does, for the activity log; nil
	// records nothing.
	Activity Activity
}

// Session is one SSH connection's view of the file tree. Serve it on each
// "sftp" subsystem channel; Close it when the connection ends.
type Session struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // ends when the session ends; for calls outside a request
	cancel context.CancelFunc
	// ending ends as soon as the session is told to end (terminate):
	// copy-data stops at its next chunk then rather than when it is done.
	ending context.Context
	endNow context.CancelFunc
	// unheard ends with ending, or earlier when the connection is lost
	// (ConnectionLost): work that only computes an answer, such as hashing
	// a large file for check-file, stops then.
	unheard context.Context
	lost    context.CancelFunc
	stop    func() bool // stops the parent context's watch
	start   time.Time   // mod time of the virtual directories

	gate    gateCache
	shares  sharesCache
	handles *Holder
	replies *ReplyShare
	metrics *Metrics

	isDenied atomic.Bool // denied != nil, read after every request

	// memo lets the session's trees answer a name's stat once per request
	// (storage.Memo): each request is one of its spans (conn.serve).
	memo storage.Memo

	mu       sync.Mutex
	closed   bool
	denied   error                   // the gate's refusal, once it ended the session
	home     storage.Tree            // answering from memo, as the folders do
	folders  map[string]storage.Tree // shared folder roots by folder ID
	uploads  map[string]*handle      // atomic uploads in progress, by virtual path
	files    map[*handle]struct{}    // open files (Transfers)
	doneIn   int64                   // bytes uploaded through closed handles (Traffic)
	doneOut  int64                   // bytes downloaded through closed handles
	channels map[*conn]struct{}      // being served
	serving  sync.WaitGroup
	settling sync.WaitGroup   // calls to the Quota under way in the background (pool.go)
	pools    map[string]*pool // room reserved in the Quota, by tree (pool.go)
	poolIdle time.Duration
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
	if cfg.SharesTTL <= 0 {
		cfg.SharesTTL = cfg.CacheTTL
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
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
		folders:  make(map[string]storage.Tree),
		uploads:  make(map[string]*handle),
		files:    make(map[*handle]struct{}),
		channels: make(map[*conn]struct{}),
		pools:    make(map[string]*pool),
		poolIdle: cmp.Or(cfg.QuotaPoolIdle, DefaultQuotaPoolIdle),
		handles:  cfg.Handles,
		replies:  cfg.Replies,
		metrics:  cfg.Metrics,
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.ending, s.endNow = context.WithCancel(s.ctx)
	s.unheard, s.lost = context.WithCancel(s.ending)
	s.gate = gateCache{gate: cfg.Gate, ttl: cfg.CacheTTL, grace: cfg.Grace, now: cfg.Now, bg: s.ctx, refusedLater: s.endDenied}
	s.gate.confirmed.Store(&s.start) // the login was checked
	s.shares = sharesCache{shares: cfg.Shares, changed: cfg.SharesChanged, ttl: cfg.SharesTTL, grace: cfg.Grace, now: cfg.Now}
	s.stop = context.AfterFunc(ctx, s.terminate)
	return s, nil
}

// ownerName is the owner and group that listings show.
func (s *Session) ownerName() string {
	if s.cfg.Login == "" {
		return "user"
	}
	return s.cfg.Login
}

// StartDirectory is where a client starts: /My Files, or the shared
// folders' mount point for jailed users.
func (s *Session) StartDirectory() string {
	if s.cfg.Jailed {
		return SharedMountPath
	}
	return MyFilesPath
}

// ExitCloser is a channel that can tell the client how the session ended
// as it closes: SSH's exit-status, which scp and `ssh -s` turn into their
// own exit code. Serve ends such a channel with CloseStatus.
type ExitCloser interface {
	CloseStatus(status uint32) error
}

// Serve runs the SFTP protocol on channel until the client or the session
// ends it, then closes channel: an ExitCloser with status 0 when the client
// ended it, 1 on a protocol error. Uploads still open are discarded. It returns
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
	c := newConn(s, channel)
	s.channels[c] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()

	err := c.serve()
	if ec, ok := channel.(ExitCloser); ok {
		status := uint32(1)
		if clientGone(err) {
			status = 0
		}
		ec.CloseStatus(status)
	} else {
		channel.Close()
	}
	c.stopWriter()
	c.closeHandles(err)

	s.mu.Lock()
	delete(s.channels, c)
	denied, closed := s.denied, s.closed
	s.mu.Unlock()
	s.serving.Done()

	switch {
	case denied != nil:
		return fmt.Errorf("%w: %w", ErrDenied, denied)
	case closed || clientGone(err):
		return nil
	}
	return err
}

// clientGone reports whether err only says the client closed the channel,
// even in the middle of a packet.
func clientGone(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed)
}

// Close ends every Serve, waits for them to return (discarding uploads still
// open) and releases the session's trees. It is safe to call more than once.
func (s *Session) Close() error {
	s.terminate()
	s.serving.Wait()
	s.closePools()
	s.settling.Wait()
	s.returnPools()
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

// ConnectionLost tells the session that its connection is gone. The
// requests already received are still carried out (an upload whose last
// write and close arrived is kept, as before), but work that only computes
// an answer nobody can now receive stops at its next block: check-file
// hashing a large file, an md5sum.
func (s *Session) ConnectionLost() { s.lost() }

// terminate closes every channel being served without waiting for its
// server: a read or a write blocked on a client that stopped reading then
// fails, and the server closes the handles still open, discarding their
// uploads. Work under way in a request that reads no packets (check-file's
// hashing, copy-data) stops at its next block: nobody is left to answer.
func (s *Session) terminate() {
	s.endNow()
	s.mu.Lock()
	s.closed = true
	chans := make([]*conn, 0, len(s.channels))
	for c := range s.channels {
		chans = append(chans, c)
	}
	s.mu.Unlock()
	for _, c := range chans {
		c.ch.Close()
	}
}

// deny records the Gate's refusal. Each channel closes itself once the
// refusal has been sent (see conn.serve), so the client reads "permission
// denied" rather than a dropped connection. It is called while requests
// are carried out, where waiting for the servers would deadlock.
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
