// Package sftp is Skiff's SSH listener: it accepts SSH connections, routes
// them by the address the client connected to (or the PROXY protocol
// header of a trusted load balancer), authenticates users against a
// Directory, and serves the "sftp" subsystem through a Sessions factory,
// and the checksum commands rclone runs (exec.go). It offers nothing else:
// no shell, other commands, terminal or forwarding.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// ServerVersion is the SSH identification string the server announces. It
// names no version number, so it tells a scanner nothing to look up.
const ServerVersion = "SSH-2.0-Skiff"

// Defaults for Limits fields left at zero.
const (
	DefaultHandshakeTimeout         = 30 * time.Second
	DefaultIdleTimeout              = 15 * time.Minute
	DefaultMaxAuthTries             = 6
	DefaultMaxConnections           = 10000
	DefaultMaxConnectionsPerAddress = 50
	DefaultMaxSessionsPerConnection = 10
	DefaultMaxChannelsPerUser       = 100
	DefaultMaxChannelsPerAccount    = 1000
	DefaultMaxChannels              = 20000
	DefaultMaxConnectionsPerUser    = 64
	DefaultMaxConnectionsPerAccount = 1000
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// after their context ends.
var ErrServerClosed = errors.New("sftp: server closed")

// Limits bound what one client, and all of them together, may hold. Zero
// fields take the Default… values.
type Limits struct {
	// HandshakeTimeout is how long a client has, from the TCP accept, to
	// send its PROXY header, finish key exchange and authenticate.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection with no traffic in either direction
	// for this long. SSH keepalives count as traffic. Negative disables it.
	IdleTimeout time.Duration
	// MaxAuthTries is the number of failed authentication attempts allowed
	// on one connection.
	MaxAuthTries int
	// MaxConnections caps open connections on the server; extra ones are
	// closed at once, before the SSH handshake. Negative means no cap.
	MaxConnections int
	// MaxConnectionsPerAddress caps open connections from one client
	// address (the real one, behind a PROXY load balancer; for IPv6, one
	// /64). Negative means no cap. Users behind one NAT share the address,
	// so keep it generous.
	MaxConnectionsPerAddress int
	// MaxSessionsPerConnection caps the session channels open at once on
	// one connection.
	MaxSessionsPerConnection int
	// MaxChannelsPerUser, MaxChannelsPerAccount and MaxChannels cap the
	// session channels open at once by one user (over all their
	// connections), by one account's users and on the server. A channel
	// over a cap is refused (resource shortage) with the cap's message;
	// the connection and its other channels go on. Negative means no cap.
	MaxChannelsPerUser    int
	MaxChannelsPerAccount int
	MaxChannels           int
	// MaxConnectionsPerUser and MaxConnectionsPerAccount cap the logged-in
	// connections (SFTP sessions) of one user and of one account's users.
	// A login over a cap fails, and the client is shown the cap's message
	// as an authentication banner. Negative means no cap.
	MaxConnectionsPerUser    int
	MaxConnectionsPerAccount int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	def(&l.MaxAuthTries, DefaultMaxAuthTries)
	def(&l.MaxConnections, DefaultMaxConnections)
	def(&l.MaxConnectionsPerAddress, DefaultMaxConnectionsPerAddress)
	def(&l.MaxSessionsPerConnection, DefaultMaxSessionsPerConnection)
	def(&l.MaxChannelsPerUser, DefaultMaxChannelsPerUser)
	def(&l.MaxChannelsPerAccount, DefaultMaxChannelsPerAccount)
	def(&l.MaxChannels, DefaultMaxChannels)
	def(&l.MaxConnectionsPerUser, DefaultMaxConnectionsPerUser)
	def(&l.MaxConnectionsPerAccount, DefaultMaxConnectionsPerAccount)
	return l
}

// counters are the server's counts of channels and logged-in connections
// against their caps.
func (l Limits) counters() (channels, sessions *vfs.Counter) {
	channels = vfs.NewCounter("SFTP channels", vfs.Caps{
		PerConnection: l.MaxSessionsPerConnection,
		PerUser:       l.MaxChannelsPerUser,
		PerAccount:    l.MaxChannelsPerAccount,
		PerProcess:    l.MaxChannels,
	})
	sessions = vfs.NewCounter("SFTP sessions", vfs.Caps{
		PerUser:    l.MaxConnectionsPerUser,
		PerAccount: l.MaxConnectionsPerAccount,
	})
	return channels, sessions
}

// Config is what a Server needs. Directory, HostKeys and Sessions are
// required.
type Config struct {
	// ListenAddresses are the host:port addresses ListenAndServe binds,
	// e.g. ":2222" or one per dedicated IP.
	ListenAddresses []string

	Directory Directory
	HostKeys  HostKeys
	Sessions  Sessions
	// Logger receives connection and authentication events; nil means
	// slog.Default(). Passwords are never logged; strings clients send
	// (login names, client versions, paths) are clipped to 128 bytes, and
	// identical lines are written at most 5 times in 10 seconds.
	Logger *slog.Logger

	// TrustedProxies are the networks of the load balancers allowed to send
	// a PROXY protocol (v1 or v2) header. From them, the header's
	// destination and source replace the socket's; without a header the
	// socket's addresses are used, unless RequireProxyHeader is set. A
	// header from any other peer closes the connection.
	//
	// A trusted source must send its header at once, as the PROXY protocol
	// requires: the server reads it before sending its own version line.
	TrustedProxies []netip.Prefix
	// RequireProxyHeader refuses connections from trusted sources that
	// send no PROXY header. Leave it off when clients may also connect
	// directly from inside the trusted networks.
	RequireProxyHeader bool

	// Ciphers overrides the offered ciphers and their order; each must be
	// one of AllowedCiphers(). Empty means DefaultAlgorithms().Ciphers, which
	// leave chacha20-poly1305 out (see DefaultAlgorithms).
	Ciphers []string
	// MACs overrides the offered MACs and their order; each must be one of
	// DefaultAlgorithms().MACs (StrictMACs drops the non-ETM ones). Empty
	// means all of them.
	MACs []string

	Limits Limits

	// Metrics counts connections, logins and refusals; nil counts nothing.
	Metrics *Metrics

	// Activity receives logins, their refusals and logouts for the
	// accounts' activity logs; nil records none. (The sessions' operations
	// go to TenantBackend.Activity.)
	Activity ActivityLog
}

// Server is the SSH listener. Create it with NewServer.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ciphers []string
	macs    []string

	mu        sync.Mutex
	closing   bool
	listened  bool
	listeners []net.Listener
	conns     map[*conn]struct{}
	byUser    map[userKey]map[*conn]struct{}
	perAddr   map[netip.Addr]int

	// wg counts Serve loops and connection handlers, so Shutdown can wait
	// for both.
	wg     sync.WaitGroup
	active atomic.Int64

	capLog logThrottle // refusals by the connection caps

	channels *vfs.Counter // open session channels
	sessions *vfs.Counter // logged-in connections

	liveWake chan struct{} // a login or logout: see SessionPublisher
}

type userKey struct{ accountID, userID string }

// NewServer checks cfg and returns a server ready to listen.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Directory == nil || cfg.HostKeys == nil || cfg.Sessions == nil {
		return nil, errors.New("sftp: Directory, HostKeys and Sessions are required")
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("sftp: invalid trusted proxy prefix %v", p)
		}
	}
	ciphers, err := checkAllowed("cipher", cfg.Ciphers, ciphers, defaultCiphers)
	if err != nil {
		return nil, err
	}
	macs, err := checkAllowed("MAC", cfg.MACs, macs, macs)
	if err != nil {
		return nil, err
	}
	cfg.ListenAddresses = slices.Clone(cfg.ListenAddresses)
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	cfg.Limits = cfg.Limits.withDefaults()
	log := SafeLogger(cfg.Logger)
	channels, sessions := cfg.Limits.counters()
	s := &Server{
		channels: channels,
		sessions: sessions,
		cfg:      cfg,
		log:      log,
		ciphers:  ciphers,
		macs:     macs,
		conns:    make(map[*conn]struct{}),
		byUser:   make(map[userKey]map[*conn]struct{}),
		perAddr:  make(map[netip.Addr]int),
		capLog:   logThrottle{every: time.Second},
		liveWake: make(chan struct{}, 1),
	}
	cfg.Metrics.watch(s)
	return s, nil
}

// Listen binds every Config.ListenAddresses address. After it returns,
// Addrs reports the bound addresses (useful with port 0). On error nothing
// stays bound.
func (s *Server) Listen(ctx context.Context) error {
	var lc net.ListenConfig
	var bound []net.Listener
	for _, addr := range s.cfg.ListenAddresses {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			for _, l := range bound {
				l.Close()
			}
			return fmt.Errorf("sftp: listen: %w", err)
		}
		bound = append(bound, ln)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		for _, l := range bound {
			l.Close()
		}
		return ErrServerClosed
	}
	s.listened = true
	s.listeners = append(s.listeners, bound...)
	return nil
}

// ListenAndServe serves on every Config.ListenAddresses address, binding
// them first unless Listen already did. It returns ErrServerClosed after
// Shutdown or when ctx ends, which also closes every connection at once.
func (s *Server) ListenAndServe(ctx context.Context) error {
	s.mu.Lock()
	listened := s.listened
	s.mu.Unlock()
	if !listened {
		if err := s.Listen(ctx); err != nil {
			return err
		}
	}
	s.mu.Lock()
	lns := slices.Clone(s.listeners)
	s.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("sftp: no listen addresses")
	}
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errs <- s.Serve(ctx, ln) }()
	}
	var first error
	for range lns {
		if err := <-errs; first == nil || errors.Is(first, ErrServerClosed) {
			first = err
		}
	}
	return first
}

// Serve accepts connections on ln until Shutdown or until ctx ends, which
// also closes every connection at once. It always returns a non-nil error,
// ErrServerClosed after a shutdown. Serve takes ownership of ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if !slices.Contains(s.listeners, ln) {
		s.listeners = append(s.listeners, ln)
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	stop := context.AfterFunc(ctx, s.closeNow)
	defer stop()

	var backoff time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// Out of file descriptors and the like: wait a little rather
			// than spin, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("sftp accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return ErrServerClosed
			}
		}
		backoff = 0
		s.cfg.Metrics.accepted()
		if !s.admit() {
			s.cfg.Metrics.refused("connections", vfs.LevelProcess, nil)
			raw.Close()
			s.capLog.log(s.log, "sftp connection refused: server connection limit reached",
				"remote", raw.RemoteAddr().String(), "limit", s.cfg.Limits.MaxConnections)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.active.Add(-1)
			s.handle(ctx, raw)
		}()
	}
}

// admit counts a new connection against the server-wide cap.
func (s *Server) admit() bool {
	n := s.active.Add(1)
	if limit := s.cfg.Limits.MaxConnections; limit > 0 && n > int64(limit) {
		s.active.Add(-1)
		return false
	}
	return true
}

// Addrs returns the addresses the server listens on.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]net.Addr, 0, len(s.listeners))
	for _, ln := range s.listeners {
		addrs = append(addrs, ln.Addr())
	}
	return addrs
}

// ActiveConnections returns the number of open connections, including those
// still in their handshake.
func (s *Server) ActiveConnections() int {
	return int(s.active.Load())
}

// closeNow stops the server without waiting: listeners and every
// connection are closed.
func (s *Server) closeNow() {
	s.mu.Lock()
	s.closing = true
	lns := s.listeners
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Disconnect closes every connection of the user at once, e.g. when the
// user is deleted or their SFTP access is turned off. It returns how many
// connections it closed.
func (s *Server) Disconnect(accountID, userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.byUser[userKey{accountID, userID}] {
		c.close()
		n++
	}
	return n
}

// DisconnectCredential closes the user's connections that logged in with
// the SSH key keyID, or with the password when keyID is empty, e.g. when
// the key is deleted or the password changed. It returns how many it closed.
func (s *Server) DisconnectCredential(accountID, userID, keyID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.byUser[userKey{accountID, userID}] {
		if c.login != nil && c.login.KeyID == keyID {
			c.close()
			n++
		}
	}
	return n
}

// DisconnectAccount closes every connection of the account's users, e.g.
// when the account's SFTP module ends. It returns how many it closed.
func (s *Server) DisconnectAccount(accountID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, conns := range s.byUser {
		if k.accountID != accountID {
			continue
		}
		for c := range conns {
			c.close()
			n++
		}
	}
	return n
}

// DedicatedIPRoutes is implemented by a Directory whose destinations may be
// accounts' dedicated IPs (TenantBackend). With it, the server ends the
// connections that logged in to their account's dedicated IP once that
// address leads elsewhere: see Server.DedicatedIPsChanged.
type DedicatedIPRoutes interface {
	// DedicatedIPAccount returns the account whose dedicated IP dest is
	// now, or "". It must answer from memory: the server calls it with its
	// registry locked.
	DedicatedIPAccount(dest netip.Addr) string
}

// reasonDedicatedIPGone is logged for connections ended by
// DedicatedIPsChanged.
const reasonDedicatedIPGone = "dedicated IP released or reassigned"

// dedicatedAccount is the account whose dedicated IP dest is now, or "".
func (s *Server) dedicatedAccount(dest netip.Addr) string {
	if r, ok := s.cfg.Directory.(DedicatedIPRoutes); ok {
		return r.DedicatedIPAccount(dest)
	}
	return ""
}

// DedicatedIPsChanged ends, at once, every connection that logged in to its
// account's dedicated IP (the destination it was routed by) when that
// address no longer leads to the account: released, or given to another
// account; and every connection of another account on an address that is
// now an account's dedicated IP (one that logged in by login ID while the
// address was free): an account's address serves only that account.
// Connections on other addresses, and the account's connections on the
// shared address, are left alone. Call it whenever the Directory's
// dedicated IPs change (sftplogin.Directory.OnDedicatedIPsChange); it reads
// them only through DedicatedIPRoutes, from memory. It returns how many
// connections it closed.
func (s *Server) DedicatedIPsChanged() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if !c.authenticated || c.endReason != "" {
			continue
		}
		now := s.dedicatedAccount(c.dest)
		if now == c.login.AccountID || (!c.dedicated && now == "") {
			continue
		}
		c.endReason = reasonDedicatedIPGone
		c.close()
		n++
	}
	if n > 0 {
		s.log.Info("sftp connections ended: their dedicated IP no longer leads to their account", "count", n)
	}
	return n
}

// noteRoute records the destination the connection is routed by and whose
// dedicated IP it is as the handshake begins.
func (s *Server) noteRoute(c *conn, dest netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.dest = dest
	c.routedTo = s.dedicatedAccount(dest)
}

// endReason is why the server ended the connection, or "".
func (s *Server) endReason(c *conn) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.endReason
}

// trusted reports whether a peer may send a PROXY header.
func (s *Server) trusted(peer netip.Addr) bool {
	if !peer.IsValid() {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// track registers a new connection so Shutdown can reach it.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	c.session.Release()
	if c.authenticated {
		s.liveChanged()
		k := userKey{c.login.AccountID, c.login.UserID}
		delete(s.byUser[k], c)
		if len(s.byUser[k]) == 0 {
			delete(s.byUser, k)
		}
	}
}

// authenticated files the connection under its user for Disconnect. It
// fails when the server is shutting down (no reason), or when the address
// the connection reached changed hands while it logged in (a dedicated IP
// released, provisioned or given to another account: the change may
// already have been swept).
func (s *Server) authenticated(c *conn, login *sftplogin.Login, log *slog.Logger) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false, ""
	}
	// The address changed hands while the client shook hands: the host
	// keys it was shown are not those its address shows now. It reconnects
	// and is shown the right ones.
	if s.dedicatedAccount(c.dest) != c.routedTo {
		return false, reasonDedicatedIPGone
	}
	c.dedicated = c.routedTo == login.AccountID
	c.authenticated = true
	c.login = login
	c.log = log
	k := userKey{login.AccountID, login.UserID}
	if s.byUser[k] == nil {
		s.byUser[k] = make(map[*conn]struct{})
	}
	s.byUser[k][c] = struct{}{}
	s.liveChanged()
	return true, ""
}

// AddressKey is what a per-address cap counts (SFTP's, and the API's
// connections'): the IPv4 address, or the IPv6 /64, since one host usually
// holds a whole /64 and could otherwise open unlimited connections from it.
func AddressKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a
}

// admitAddress counts a connection against its client address's cap.
func (s *Server) admitAddress(a netip.Addr) bool {
	k := AddressKey(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit := s.cfg.Limits.MaxConnectionsPerAddress; limit > 0 && s.perAddr[k] >= limit {
		s.cfg.Metrics.refused("connections", "address", nil)
		return false
	}
	s.perAddr[k]++
	return true
}

func (s *Server) releaseAddress(a netip.Addr) {
	k := AddressKey(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[k] <= 1 {
		delete(s.perAddr, k)
	} else {
		s.perAddr[k]--
	}
}
