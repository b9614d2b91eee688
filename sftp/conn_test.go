package sftp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
)

// deadlineConn is a net.Conn that records the deadline set on it.
type deadlineConn struct {
	net.Conn // nil: only the methods below are called
	deadline time.Time
}

func (c *deadlineConn) Read(p []byte) (int, error)         { return len(p), nil }
func (c *deadlineConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c *deadlineConn) SetDeadline(t time.Time) error      { c.deadline = t; return nil }
func (c *deadlineConn) SetReadDeadline(t time.Time) error  { c.deadline = t; return nil }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { c.deadline = t; return nil }

// A connection with steady traffic never gets within (idle - step) of its
// deadline, whatever the idle timeout; an idle one keeps its deadline.
func TestIdleDeadlineFollowsTraffic(t *testing.T) {
	for _, idle := range []time.Duration{200 * time.Millisecond, 15 * time.Minute} {
		t.Run(idle.String(), func(t *testing.T) {
			raw := &deadlineConn{}
			start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			clock := start
			c := newNetConn(raw, untrustedReadBuffer)
			c.connStart, c.now = start, func() time.Time { return clock }

			if err := c.startIdleTimer(idle); err != nil {
				t.Fatal(err)
			}
			if want := start.Add(idle); !raw.deadline.Equal(want) {
				t.Fatalf("deadline %v, want %v", raw.deadline, want)
			}
			step := min(maxExtendStep, idle/4)
			buf := make([]byte, 8)
			// Traffic every step/2, alternating directions, for ten idle periods.
			for clock.Before(start.Add(10 * idle)) {
				clock = clock.Add(step / 2)
				if clock.Sub(start)/(step/2)%2 == 0 {
					c.Read(buf)
				} else {
					c.Write(buf)
				}
				if left := raw.deadline.Sub(clock); left < idle-step {
					t.Fatalf("at %v only %v left before the idle deadline", clock.Sub(start), left)
				}
			}
			// Then silence: the deadline stays where the last traffic put it.
			last := raw.deadline
			clock = clock.Add(2 * idle)
			if !raw.deadline.Equal(last) || !raw.deadline.Before(clock) {
				t.Errorf("deadline %v moved without traffic, or is still ahead", raw.deadline)
			}
		})
	}
}

func TestNoIdleTimeoutClearsDeadline(t *testing.T) {
	raw := &deadlineConn{deadline: time.Now().Add(time.Second)}
	c := newNetConn(raw, untrustedReadBuffer)
	if err := c.startIdleTimer(-1); err != nil {
		t.Fatal(err)
	}
	c.Read(make([]byte, 8))
	if !raw.deadline.IsZero() {
		t.Errorf("deadline %v, want none", raw.deadline)
	}
}

func TestAddressKeyGroupsIPv6By64(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"203.0.113.9", "203.0.113.9", true},
		{"203.0.113.9", "203.0.113.10", false},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
	}
	for _, c := range cases {
		ka, kb := AddressKey(netip.MustParseAddr(c.a)), AddressKey(netip.MustParseAddr(c.b))
		if (ka == kb) != c.same {
			t.Errorf("%s and %s counted together: %v, want %v", c.a, c.b, ka == kb, c.same)
		}
	}
}

// A connection the server closes delivers everything the server wrote
// before it, even when the client's last packets were never read: a plain
// close of such a socket resets the connection, and the kernel drops what
// it had not yet sent — how a "permission denied" that ends a session went
// missing and the client saw "connection lost" (TestE2ESessionsEnd, about
// one run in forty on a loaded machine). Once closed, the SSH layer reads
// nothing more, and the socket is released when the client closes.
func TestCloseDeliversWhatWasWritten(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// A small receive window at the client and room at the server: most
	// of what the server writes is still queued at its end when it closes.
	if err := client.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	if err := raw.(*net.TCPConn).SetWriteBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	nc := newNetConn(raw, trustedReadBuffer)
	nc.lingers.Store(true) // as once the client has logged in
	if _, err := client.Write([]byte("the client's last words, never read")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // they have arrived
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if _, err := nc.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := nc.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := nc.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Errorf("a read after Close got %d bytes, %v", n, err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the client read %d of %d bytes (%v)", len(got), len(want), err)
	}
	// The server side is released once the client closes: its socket
	// answers nothing more.
	client.Close()
	testkit.Eventually(t, "the server's socket to close", func() bool {
		_, err := raw.Write([]byte("x"))
		return errors.Is(err, net.ErrClosed)
	})
}
