package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/skiffhq/skiff/internal/testkit"
)

// A body sent a byte a second is cut off at the read timeout instead of
// holding its connection (and handler) forever.
func TestHTTPSlowBodyCutOff(t *testing.T) {
	t.Parallel()
	f := HTTPFlags{ReadHeader: time.Second, Read: time.Second, Write: 5 * time.Second, Idle: time.Minute}
	srv := f.server(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.ReadAll(req.Body)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 10 { // a byte a second, bounded
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
	_, err = io.Copy(io.Discard, c) // returns when the server closes (or resets) the connection
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the slow body was not cut off: %v after %v", err, took)
	}
	if took > 3*time.Second {
		t.Fatalf("cut off after %v; the read timeout is 1s", took)
	}
}

// Connections over the cap are answered 503 with a reason and closed; a
// freed slot is used again.
func TestHTTPConnectionCap(t *testing.T) {
	t.Parallel()
	addr := capServer(t, 2, 0, nil, nil)
	a, b := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	if got := httpGet(a); !strings.Contains(got, "served") {
		t.Fatalf("first connection: %q", got)
	}
	httpGet(b)
	if got := httpGet(dialFrom(t, "127.0.0.1", addr)); !strings.HasPrefix(got, "503") || !strings.Contains(got, "too many open connections") {
		t.Fatalf("third connection: %q, want 503 too many open connections", got)
	}
	a.Close()
	servedFrom(t, "127.0.0.1", addr, "the freed slot to be reused")
}

// capServer serves "served" behind limitConns with the given caps, on a
// loopback listener every 127.x address can reach.
func capServer(t *testing.T, max, perAddr int, trusted []netip.Prefix, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "served\n") })
	}
	srv := HTTPFlags{ReadHeader: 5 * time.Second, Read: 5 * time.Second, Write: 5 * time.Second, Idle: time.Minute}.server(h)
	go srv.Serve(limitConns(ln, max, perAddr, trusted))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// dialFrom opens a connection to addr from the local address from (any
// 127.x on loopback).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// httpGet sends a GET on c and returns the status and body.
func httpGet(c net.Conn) string {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err.Error()
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1000))
	return res.Status + " " + string(b)
}

func isAddrRefusal(got string) bool {
	return strings.HasPrefix(got, "429") && strings.Contains(got, `"code":"TOO_MANY_CONNECTIONS"`) &&
		strings.Contains(got, "too many open connections from your address")
}

// One address holding its cap of open connections is refused more (429,
// with a GraphQL-style error) while other addresses are still served; the
// refused connections take no slot of the server's cap, which still
// answers 503 when full; a closed connection frees its address's slot.
func TestHTTPConnectionCapPerAddress(t *testing.T) {
	t.Parallel()
	addr := capServer(t, 4, 2, nil, nil)
	a, b := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	for _, c := range []net.Conn{a, b} {
		if got := httpGet(c); !strings.Contains(got, "served") {
			t.Fatalf("connection within the cap: %q", got)
		}
	}
	for i := range 5 {
		if got := httpGet(dialFrom(t, "127.0.0.1", addr)); !isAddrRefusal(got) {
			t.Fatalf("connection %d over the address's cap: %q, want 429 TOO_MANY_CONNECTIONS", i+3, got)
		}
	}
	// The five refused took no slot: two other addresses fill the server.
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		if got := httpGet(dialFrom(t, from, addr)); !strings.Contains(got, "served") {
			t.Fatalf("connection from %s while 127.0.0.1 is at its cap: %q", from, got)
		}
	}
	if got := httpGet(dialFrom(t, "127.0.0.4", addr)); !strings.HasPrefix(got, "503") || !strings.Contains(got, "too many open connections") {
		t.Fatalf("fifth open connection with the server's cap at 4: %q, want 503", got)
	}
	a.Close()
	servedFrom(t, "127.0.0.1", addr, "the address's freed slot to be reused")
}

// servedFrom waits until a connection from the local address from is
// served by addr's server.
func servedFrom(t *testing.T, from, addr, what string) {
	t.Helper()
	testkit.Eventually(t, what, func() bool { return strings.Contains(httpGet(dialFrom(t, from, addr)), "served") })
}

// A WebSocket holds its address's slot while open (its handler hijacked
// the connection from net/http) and gives it back when it closes.
func TestHTTPConnectionCapCountsWebSockets(t *testing.T) {
	t.Parallel()
	addr := capServer(t, 10, 1, nil, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") == "" {
			io.WriteString(w, "served\n")
			return
		}
		ws, err := websocket.Accept(w, req, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := httpGet(dialFrom(t, "127.0.0.1", addr)); !isAddrRefusal(got) {
		t.Fatalf("a connection beside an open WebSocket with a cap of 1: %q, want 429", got)
	}
	if got := httpGet(dialFrom(t, "127.0.0.2", addr)); !strings.Contains(got, "served") {
		t.Fatalf("another address: %q", got)
	}
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	servedFrom(t, "127.0.0.1", addr, "the closed WebSocket's slot to be given back")
}

// A trusted reverse proxy carries many clients' connections from one
// address: it is not capped per address, while other peers still are.
func TestHTTPConnectionCapSparesTrustedProxies(t *testing.T) {
	t.Parallel()
	addr := capServer(t, 10, 1, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, nil)
	for i := range 4 {
		if got := httpGet(dialFrom(t, "127.0.0.1", addr)); !strings.Contains(got, "served") {
			t.Fatalf("connection %d from the trusted proxy: %q", i+1, got)
		}
	}
	if got := httpGet(dialFrom(t, "127.0.0.2", addr)); !strings.Contains(got, "served") {
		t.Fatalf("first connection from an untrusted peer: %q", got)
	}
	if got := httpGet(dialFrom(t, "127.0.0.2", addr)); !isAddrRefusal(got) {
		t.Fatalf("second connection from an untrusted peer with a cap of 1: %q, want 429", got)
	}
}

type peerConn struct {
	net.Conn
	remote net.Addr
}

func (c peerConn) RemoteAddr() net.Addr { return c.remote }

// The per-address cap counts an IPv4 address, an IPv6 /64 (mapped IPv4 as
// IPv4), and not a trusted proxy.
func TestHTTPConnectionAddressKey(t *testing.T) {
	l := &connLimiter{perAddrMax: 1, trusted: []netip.Prefix{netip.MustParsePrefix("2001:db8:ffff::/48")}}
	key := func(s string) string {
		k, ok := l.connAddressKey(peerConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(s), 1234))})
		if !ok {
			return "not capped"
		}
		return k.String()
	}
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::",
		"2001:db8:1:2::ffff":   "2001:db8:1:2::",
		"2001:db8:1:3::1":      "2001:db8:1:3::",
		"fe80::1%eth0":         "fe80::",
		"2001:db8:ffff:1::1":   "not capped",
	} {
		if got := key(in); got != want {
			t.Errorf("%s: counted as %s, want %s", in, got, want)
		}
	}
}
