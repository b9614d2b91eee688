package sftp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// errUntrustedProxyHeader ends a connection whose peer sent a PROXY header
// without being a trusted source: honouring it would let anyone pick the
// destination (and so the account) and the client address they are logged
// and limited under.
var errUntrustedProxyHeader = errors.New("PROXY header from an untrusted source")

// errMissingProxyHeader ends a connection from a trusted source that sent no
// PROXY header while Config.RequireProxyHeader is set.
var errMissingProxyHeader = errors.New("no PROXY header from a trusted source")

// Read buffer sizes. The buffer must hold a whole PROXY header, which the
// parser peeks at: v1 is at most 107 bytes, v2 is 16 bytes plus addresses
// and TLVs, which some load balancers fill with a few hundred bytes. From an
// untrusted peer only the signature is looked at (a header is refused
// whatever follows), so a small buffer does. Either way, once the header is
// past, x/crypto's 4 KiB reads go straight to the socket.
const (
	trustedReadBuffer   = 4096
	untrustedReadBuffer = 256
)

// maxExtendStep is how stale the idle deadline may get before a read or
// write pushes it forward (a quarter of the idle timeout when that is
// shorter). Moving it on every packet would reset a runtime timer per packet
// on fast transfers for no benefit.
const maxExtendStep = time.Second

// route is where a connection goes and who it comes from.
type route struct {
	dest   netip.Addr // the address the client connected to
	remote netip.Addr // the client's real address
	// viaProxy is true when both came from a PROXY header.
	viaProxy bool
}

// netConn is the connection handed to the SSH layer. It reads through the
// buffer used to parse the PROXY header, refuses a PROXY header from an
// untrusted peer on the first read, and keeps the idle deadline fresh.
type netConn struct {
	net.Conn
	r *bufio.Reader

	// refuseProxy is set for untrusted peers. The check runs on the first
	// read rather than before the handshake because some SSH clients wait
	// for the server's version line before sending anything.
	refuseProxy atomic.Bool

	// closing is set by Close: reads return net.ErrClosed from then on,
	// and the idle deadline no longer moves.
	closing atomic.Bool
	// lingers is set once the client has logged in: only then does Close
	// wait for the client's side (a connection refused before, often by
	// a scanner or an attacker, is closed outright, and holds no socket
	// after its slot is released).
	lingers atomic.Bool
	// behind gathers writes once the client has logged in (writebehind.go).
	behind atomic.Pointer[writeBehind]
	// sent is closed once Close has sent what behind gathered.
	sent chan struct{}

	idle       atomic.Int64 // idle timeout in ns; 0 while the handshake deadline applies
	step       atomic.Int64 // ns the deadline may go stale before it is moved
	lastExtend atomic.Int64 // ns since connStart of the last extension
	connStart  time.Time
	now        func() time.Time
}

func newNetConn(c net.Conn, bufSize int) *netConn {
	return &netConn{
		Conn:      c,
		r:         bufio.NewReaderSize(c, bufSize),
		sent:      make(chan struct{}),
		connStart: time.Now(),
		now:       time.Now,
	}
}

// peerGone reports whether a read failed because the peer sent nothing in
// time or went away (a scanner, a load balancer's TCP health check), not
// because of what it sent.
func peerGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// readProxyHeader reads the PROXY header a trusted peer sends before
// anything else. It returns the route from the header, or from the socket
// when there is none (unless required) or when the header says LOCAL (a
// load balancer's own health check).
func (c *netConn) readProxyHeader(socket route, require bool) (route, error) {
	h, err := proxyproto.Read(c.r)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		if require {
			if _, err := c.r.Peek(1); err != nil {
				// It sent nothing at all: a TCP health check, or gone.
				return route{}, err
			}
			return route{}, errMissingProxyHeader
		}
		return socket, nil
	case err != nil:
		return route{}, fmt.Errorf("reading PROXY header: %w", err)
	case h.Command.IsLocal():
		return socket, nil
	}
	src, dst, ok := h.TCPAddrs()
	if !ok {
		return route{}, fmt.Errorf("PROXY header is not for TCP (%v)", h.TransportProtocol)
	}
	return route{
		dest:     dst.AddrPort().Addr().Unmap(),
		remote:   src.AddrPort().Addr().Unmap(),
		viaProxy: true,
	}, nil
}

func (c *netConn) Read(p []byte) (int, error) {
	if c.refuseProxy.Load() {
		c.refuseProxy.Store(false)
		// Only the reading goroutine gets here, so there is no race
		// between Load and Store.
		_, err := proxyproto.Read(c.r)
		switch {
		case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		case err == nil:
			return 0, errUntrustedProxyHeader
		case peerGone(err):
			// Silent until the deadline, or gone: no header at all.
			return 0, err
		default:
			return 0, fmt.Errorf("%w: %w", errUntrustedProxyHeader, err)
		}
	}
	if c.closing.Load() {
		return 0, net.ErrClosed
	}
	c.touch()
	n, err := c.r.Read(p)
	if c.closing.Load() {
		// Close woke this read: what it got is the client's last words,
		// drained, not requests to carry out.
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *netConn) Write(p []byte) (int, error) {
	c.touch()
	if w := c.behind.Load(); w != nil {
		return w.Write(p)
	}
	return c.Conn.Write(p)
}

// loggedIn marks the client as logged in: closing lingers from now on, and
// writes are gathered.
func (c *netConn) loggedIn() {
	c.lingers.Store(true)
	c.behind.Store(newWriteBehind(c.Conn))
}

// closeLinger is how long a closed connection keeps reading what the
// client still sends, waiting for it to close its side, before the socket
// is closed whatever it holds.
const closeLinger = 2 * time.Second

// Close ends the connection as a careful TCP server does. Closing a socket
// outright while the client's last packets (a window adjustment, its own
// channel close) wait unread makes the kernel reset the connection and
// drop what it had not yet sent: the client would lose the last replies,
// such as the "permission denied" that ends a session whose access was
// withdrawn, and see "connection lost" instead. So Close sends what is
// queued and then the end of the stream (CloseWrite), stops the SSH layer's
// reads at once (no request read from now on is carried out), and reads
// and discards what still arrives until the client closes, for at most
// closeLinger, before closing the socket. It returns without waiting.
// Connections that never logged in are closed outright.
func (c *netConn) Close() error {
	if !c.closing.CompareAndSwap(false, true) {
		return nil
	}
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || !c.lingers.Load() {
		close(c.sent)
		return c.Conn.Close()
	}
	w := c.behind.Load()
	// Wake a read blocked in the SSH layer (it sees net.ErrClosed), then
	// send what is gathered, end the stream and drain on the socket itself.
	_ = c.Conn.SetReadDeadline(time.Now())
	go func() {
		_ = c.Conn.SetDeadline(time.Now().Add(closeLinger))
		if w != nil {
			w.close()
		}
		err := cw.CloseWrite()
		close(c.sent)
		if err == nil {
			buf := make([]byte, 512)
			for {
				if _, err := c.Conn.Read(buf); err != nil {
					break
				}
			}
		}
		c.Conn.Close()
	}()
	return nil
}

// waitSent waits until a closed connection has sent its last bytes (at
// most closeLinger), so that a server shutting down does not exit with
// replies still gathered. Call it after Close, from the same goroutine.
func (c *netConn) waitSent() {
	if c.closing.Load() {
		<-c.sent
	}
}

// startIdleTimer replaces the handshake deadline with the idle deadline,
// which reads and writes then push forward. idle <= 0 removes the deadline.
func (c *netConn) startIdleTimer(idle time.Duration) error {
	if idle <= 0 {
		return c.Conn.SetDeadline(time.Time{})
	}
	now := c.now()
	c.lastExtend.Store(int64(now.Sub(c.connStart)))
	c.step.Store(int64(min(maxExtendStep, idle/4)))
	c.idle.Store(int64(idle))
	return c.Conn.SetDeadline(now.Add(idle))
}

// touch pushes the idle deadline forward if it was last moved more than a
// step ago, so a busy connection always has at least idle-step left.
// Traffic in either direction counts: a long download to a client that only
// sends window adjustments stays alive.
func (c *netConn) touch() {
	idle := c.idle.Load()
	if idle == 0 || c.closing.Load() {
		return
	}
	since := int64(c.now().Sub(c.connStart))
	last := c.lastExtend.Load()
	if since-last < c.step.Load() || !c.lastExtend.CompareAndSwap(last, since) {
		return
	}
	// An error means the connection is closing; the next read reports it.
	_ = c.Conn.SetDeadline(c.connStart.Add(time.Duration(since + idle)))
}

// addrOf returns the IP of a TCP address, with IPv4-mapped IPv6 addresses
// unmapped so that they match IPv4 prefixes and directory entries. It
// returns the zero Addr for non-TCP addresses.
func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
