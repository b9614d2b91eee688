package sftp

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/crypto/ssh"
)

// dialViaProxy connects from 127.0.0.1 as a load balancer would: it writes
// header (if any) and then speaks SSH over the same connection.
func dialViaProxy(t *testing.T, addr string, header *proxyproto.Header, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		if _, err := header.WriteTo(nc); err != nil {
			t.Fatal(err)
		}
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	c := ssh.NewClient(conn, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c, nil
}

func proxyHeader(version byte, src, dst string) *proxyproto.Header {
	return proxyproto.HeaderProxyFromAddrs(version,
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
}

func TestProxyHeaderFromTrustedSourceRoutes(t *testing.T) {
	dedicated := netip.MustParseAddr("198.51.100.7")
	dedicatedKey := ed25519Signer(t)
	for _, version := range []byte{1, 2} {
		t.Run("v"+string('0'+version), func(t *testing.T) {
			dir := &fakeDirectory{password: passwords(alice)}
			ts := newTestServer(t, dir, func(c *Config) {
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
				c.HostKeys.(*staticHostKeys).byDest = map[netip.Addr][]ssh.Signer{dedicated: {dedicatedKey}}
			})

			cfg, hostKey := clientConfig("alice", ssh.Password(testPassword))
			c, err := dialViaProxy(t, ts.addr, proxyHeader(version, "203.0.113.9:50000", "198.51.100.7:22"), cfg)
			if err != nil {
				t.Fatalf("login through proxy: %v", err)
			}
			mustSFTP(t, c)
			if ssh.FingerprintSHA256(*hostKey) != ssh.FingerprintSHA256(dedicatedKey.PublicKey()) {
				t.Error("client did not get the destination's host key")
			}
			calls := dir.Calls()
			if len(calls) == 0 || calls[0].dest != dedicated || calls[0].remote != netip.MustParseAddr("203.0.113.9") {
				t.Errorf("directory calls %+v, want dest 198.51.100.7 from 203.0.113.9", calls)
			}
		})
	}
}

func TestProxyHeaderFromUntrustedSourceRefused(t *testing.T) {
	dir := &fakeDirectory{password: passwords(alice)}
	ts := newTestServer(t, dir, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	for _, version := range []byte{1, 2} {
		cfg, _ := clientConfig("alice", ssh.Password(testPassword))
		if _, err := dialViaProxy(t, ts.addr, proxyHeader(version, "203.0.113.9:50000", "198.51.100.7:22"), cfg); err == nil {
			t.Fatalf("v%d header from an untrusted source was accepted", version)
		}
	}
	if calls := dir.Calls(); len(calls) != 0 {
		t.Errorf("directory was asked %+v", calls)
	}
	testkit.Eventually(t, "both refusals to be logged", func() bool {
		return strings.Count(ts.logs.String(), "PROXY header from an untrusted source") == 2
	})
	// The same client without a header is served, by the socket's addresses.
	cfg, _ := clientConfig("alice", ssh.Password(testPassword))
	if _, err := dialViaProxy(t, ts.addr, nil, cfg); err != nil {
		t.Fatalf("direct login: %v", err)
	}
	if calls := dir.Calls(); len(calls) != 1 || calls[0].dest != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("directory calls %+v, want dest 127.0.0.2", calls)
	}
}

// A peer that sends nothing before the handshake times out, or resets the
// connection before its first bytes are read, sent no PROXY header: it is
// logged as what it is (a timeout; a client gone, at debug level), not as
// a refused PROXY header at WARN, which a port scanner could otherwise
// write at will.
func TestSilentOrVanishingPeerIsNoProxyHeader(t *testing.T) {
	ts := newTestServer(t, &fakeDirectory{password: passwords(alice)}, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		c.Limits.HandshakeTimeout = 300 * time.Millisecond
	})
	silent, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	reset, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	// Closing with the server's version line unread, and no linger, sends
	// a reset.
	testkit.Eventually(t, "the server's version line", func() bool {
		var b [4]byte
		_, err := reset.Read(b[:])
		return err == nil
	})
	reset.(*net.TCPConn).SetLinger(0)
	reset.Close()
	testkit.Eventually(t, "the timeout and the reset to be logged", func() bool {
		logs := ts.logs.String()
		return strings.Contains(logs, "sftp handshake timed out") && strings.Contains(logs, "sftp client left during handshake")
	})
	if logs := ts.logs.String(); strings.Contains(logs, "PROXY header") || strings.Contains(logs, "level=WARN") {
		t.Errorf("log:\n%s", logs)
	}

	// From a trusted load balancer that requires the header, its TCP
	// health check (connect, close) and a silent connection alike.
	lb := newTestServer(t, &fakeDirectory{password: passwords(alice)}, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.RequireProxyHeader = true
		c.Limits.HandshakeTimeout = 300 * time.Millisecond
	})
	check, err := net.Dial("tcp", lb.addr)
	if err != nil {
		t.Fatal(err)
	}
	check.Close()
	quiet, err := net.Dial("tcp", lb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	testkit.Eventually(t, "the balancer's two connections to be logged", func() bool {
		logs := lb.logs.String()
		return strings.Contains(logs, "sftp handshake timed out") && strings.Contains(logs, "sftp client left during handshake")
	})
	if logs := lb.logs.String(); strings.Contains(logs, "level=WARN") {
		t.Errorf("log:\n%s", logs)
	}
}

func TestTrustedSourceWithoutHeader(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	t.Run("used if present by default", func(t *testing.T) {
		dir := &fakeDirectory{password: passwords(alice)}
		ts := newTestServer(t, dir, func(c *Config) { c.TrustedProxies = trusted })
		cfg, _ := clientConfig("alice", ssh.Password(testPassword))
		if _, err := dialViaProxy(t, ts.addr, nil, cfg); err != nil {
			t.Fatalf("login without header: %v", err)
		}
		if calls := dir.Calls(); len(calls) != 1 || calls[0].remote != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("directory calls %+v, want the socket's addresses", calls)
		}
	})
	t.Run("required", func(t *testing.T) {
		dir := &fakeDirectory{password: passwords(alice)}
		ts := newTestServer(t, dir, func(c *Config) {
			c.TrustedProxies = trusted
			c.RequireProxyHeader = true
		})
		cfg, _ := clientConfig("alice", ssh.Password(testPassword))
		if _, err := dialViaProxy(t, ts.addr, nil, cfg); err == nil {
			t.Fatal("login without the required header succeeded")
		}
		cfg, _ = clientConfig("alice", ssh.Password(testPassword))
		if _, err := dialViaProxy(t, ts.addr, proxyHeader(2, "203.0.113.9:50000", "127.0.0.2:22"), cfg); err != nil {
			t.Fatalf("login with header: %v", err)
		}
	})
	t.Run("LOCAL command keeps the socket's addresses", func(t *testing.T) {
		dir := &fakeDirectory{password: passwords(alice)}
		ts := newTestServer(t, dir, func(c *Config) { c.TrustedProxies = trusted })
		h := proxyHeader(2, "203.0.113.9:50000", "198.51.100.7:22")
		h.Command = proxyproto.LOCAL
		cfg, _ := clientConfig("alice", ssh.Password(testPassword))
		if _, err := dialViaProxy(t, ts.addr, h, cfg); err != nil {
			t.Fatalf("login: %v", err)
		}
		if calls := dir.Calls(); len(calls) != 1 || calls[0].dest != netip.MustParseAddr("127.0.0.2") {
			t.Errorf("directory calls %+v, want the socket's destination", calls)
		}
	})
}

// The per-address cap counts the client behind the load balancer, not the
// load balancer.
func TestPerAddressCapUsesRealClient(t *testing.T) {
	ts := newTestServer(t, &fakeDirectory{password: passwords(alice)}, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.Limits.MaxConnectionsPerAddress = 1
	})
	login := func(src string) error {
		cfg, _ := clientConfig("alice", ssh.Password(testPassword))
		_, err := dialViaProxy(t, ts.addr, proxyHeader(1, src, "127.0.0.2:22"), cfg)
		return err
	}
	if err := login("203.0.113.9:1000"); err != nil {
		t.Fatal(err)
	}
	if err := login("203.0.113.10:1000"); err != nil {
		t.Errorf("second client behind the same balancer refused: %v", err)
	}
	if err := login("203.0.113.9:1001"); err == nil {
		t.Error("second connection of the same client accepted with a cap of 1")
	}
}

// Load balancers may append TLVs (IDs, TLS details) to a v2 header; a
// header well past the untrusted buffer size still routes.
func TestProxyHeaderWithLargeTLVs(t *testing.T) {
	dir := &fakeDirectory{password: passwords(alice)}
	ts := newTestServer(t, dir, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	h := proxyHeader(2, "203.0.113.9:50000", "198.51.100.7:22")
	if err := h.SetTLVs([]proxyproto.TLV{
		{Type: proxyproto.PP2_TYPE_UNIQUE_ID, Value: []byte(strings.Repeat("i", 128))},
		{Type: proxyproto.PP2_TYPE_NOOP, Value: make([]byte, 1500)},
	}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := clientConfig("alice", ssh.Password(testPassword))
	if _, err := dialViaProxy(t, ts.addr, h, cfg); err != nil {
		t.Fatalf("login through proxy: %v", err)
	}
	if calls := dir.Calls(); len(calls) != 1 || calls[0].dest != netip.MustParseAddr("198.51.100.7") {
		t.Errorf("directory calls %+v, want dest 198.51.100.7", calls)
	}
}
