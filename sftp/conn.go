package sftp

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
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
		connStart: time.Now(),
		now:       time.Now,
	}
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
		if !errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			if err == nil {
				err = errUntrustedProxyHeader
			} else {
				err = fmt.Errorf("%w: %w", errUntrustedProxyHeader, err)
			}
			return 0, err
		}
	}
	c.touch()
	return c.r.Read(p)
}

func (c *netConn) Write(p []byte) (int, error) {
	c.touch()
	return c.Conn.Write(p)
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
	if idle == 0 {
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
