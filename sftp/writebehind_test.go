package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
)

// countingListener counts the writes and bytes of the connections it accepts.
type countingListener struct {
	net.Listener
	writes, bytes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{TCPConn: c.(*net.TCPConn), l: l}, nil
}

type countingConn struct {
	*net.TCPConn
	l *countingListener
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.l.writes.Add(1)
	c.l.bytes.Add(int64(n))
	return n, err
}

// A download with the ciphers OpenSSH's client picks from Skiff's offer
// (aes128-ctr with hmac-sha2-256-etm) reaches the socket in few large
// writes. x/crypto alone writes each 32 KiB packet in three pieces (the
// first 4 KiB, the rest, the padding and MAC), about 11 KiB per system call.
func TestDownloadsReachTheSocketInLargeWrites(t *testing.T) {
	dir := &fakeDirectory{password: passwords(alice)}
	ts := newTestServer(t, dir, nil)
	raw, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: raw}
	go ts.Serve(context.Background(), ln)

	data := make([]byte, 16<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(ts.sessions.root, "big.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := clientConfig("alice", ssh.Password(testPassword))
	cfg.Ciphers = []string{"aes128-ctr"}
	cfg.MACs = []string{"hmac-sha2-256-etm@openssh.com"}
	c, err := dial(t, raw.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := mustSFTP(t, c)
	f, err := sc.Open("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writes0, bytes0 := ln.writes.Load(), ln.bytes.Load()
	var got bytes.Buffer
	if _, err := f.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("downloaded bytes differ from the file")
	}
	writes, sent := ln.writes.Load()-writes0, ln.bytes.Load()-bytes0
	perWrite := sent / max(writes, 1)
	t.Logf("%d bytes in %d writes, %d bytes per write", sent, writes, perWrite)
	if perWrite < 16<<10 {
		t.Errorf("the download went out in %d writes of %d bytes on average; want at least 16 KiB per write (twice what x/crypto writes alone)", writes, perWrite)
	}
}

// blockingConn is a connection whose writes wait until released, and record
// what they were given.
type blockingConn struct {
	net.Conn
	release chan error

	mu     sync.Mutex
	writes [][]byte
}

func newBlockingConn() *blockingConn { return &blockingConn{release: make(chan error)} }

func (c *blockingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	if err := <-c.release; err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *blockingConn) got() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

// waitWrites waits until the connection has been given n writes.
func (c *blockingConn) waitWrites(t *testing.T, n int) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("the connection to be given %d writes", n), func() bool { return len(c.got()) >= n })
}

func mustWrite(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

// packetPiece is a write as x/crypto makes the first of a large packet's:
// a full 4 KiB buffer, which is always gathered.
func packetPiece(c byte) string { return strings.Repeat(string(c), directWriteMax) }

func TestWriteBehindSendsWhatGatheredInOneWrite(t *testing.T) {
	conn := newBlockingConn()
	w := newWriteBehind(conn)
	first := packetPiece('f')
	mustWrite(t, w, first)
	conn.waitWrites(t, 1) // sending, and blocked in the socket
	mustWrite(t, w, "sec")
	mustWrite(t, w, "ond")
	conn.release <- nil
	conn.waitWrites(t, 2)
	conn.release <- nil
	w.close()
	got := conn.got()
	if len(got) != 2 || string(got[0]) != first || string(got[1]) != "second" {
		t.Errorf("the socket was written %d pieces (%d bytes, then %q), want the first packet piece, then \"second\"", len(got), len(got[0]), got[1:])
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a write after close returned %v, want net.ErrClosed", err)
	}
}

func TestWriteBehindBlocksWhileTheSocketIsBehind(t *testing.T) {
	conn := newBlockingConn()
	w := newWriteBehind(conn)
	mustWrite(t, w, packetPiece('x'))
	conn.waitWrites(t, 1)
	big := bytes.Repeat([]byte("y"), maxWriteBehind)
	mustWrite(t, w, string(big)) // the limit may be reached by one write
	done := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("z"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a write past %d waiting bytes returned (%v) before the socket took any", maxWriteBehind, err)
	case <-time.After(50 * time.Millisecond):
	}
	conn.release <- nil // "x" sent; the gathered bytes go next, and make room
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	conn.release <- nil
	conn.waitWrites(t, 3)
	conn.release <- nil
	w.close()
	got := conn.got()
	if string(got[1]) != string(big) || string(got[2]) != "z" {
		t.Errorf("the socket was written %d, %d, %q bytes; want %d, %d bytes, z", len(got[0]), len(got[1]), got[2], directWriteMax, len(big))
	}
}

func TestWriteBehindReturnsTheSocketsError(t *testing.T) {
	conn := newBlockingConn()
	w := newWriteBehind(conn)
	mustWrite(t, w, packetPiece('a'))
	conn.waitWrites(t, 1)
	mustWrite(t, w, "b")
	broken := errors.New("connection reset by peer")
	conn.release <- broken
	w.close()
	if _, err := w.Write([]byte("c")); !errors.Is(err, broken) {
		t.Errorf("a write after the socket failed returned %v, want its error", err)
	}
	if got := conn.got(); len(got) != 1 {
		t.Errorf("the socket was written %q after it failed", got[1:])
	}
}

func TestWriteBehindCloseWaitsForTheGatheredBytes(t *testing.T) {
	conn := newBlockingConn()
	w := newWriteBehind(conn)
	mustWrite(t, w, packetPiece('l'))
	conn.waitWrites(t, 1)
	sent := make(chan struct{})
	go func() {
		w.close()
		close(sent)
	}()
	select {
	case <-sent:
		t.Fatal("close reported the bytes sent while the socket still held them")
	case <-time.After(20 * time.Millisecond):
	}
	conn.release <- nil
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not report the bytes sent")
	}
}

// A small reply on a connection with nothing gathered (a login's, a session
// start's, a listing's) goes to the socket from the caller at once: handing
// each to a goroutine cost about a tenth of the login rate. The tail of a
// large packet (its padding and MAC) stays with the packet, and a large
// write is gathered even on an idle connection.
func TestWriteBehindWritesSmallRepliesAtOnce(t *testing.T) {
	conn := newBlockingConn()
	w := newWriteBehind(conn)
	returned := make(chan struct{})
	go func() {
		mustWrite(t, w, "reply")
		close(returned)
	}()
	conn.waitWrites(t, 1)
	select {
	case <-returned:
		t.Fatal("a small write on an idle connection returned before the socket took it: it was handed to the sending goroutine")
	case <-time.After(20 * time.Millisecond):
	}
	conn.release <- nil
	<-returned

	// A packet: its first 4 KiB and its tail are taken without waiting for
	// the socket, and sent together.
	mustWrite(t, w, packetPiece('p'))
	conn.waitWrites(t, 2)
	mustWrite(t, w, "mac")
	conn.release <- nil
	conn.waitWrites(t, 3)
	conn.release <- nil
	w.close()
	if got := conn.got(); string(got[0]) != "reply" || len(got[1]) != directWriteMax || string(got[2]) != "mac" {
		t.Errorf("the socket was written %q, %d bytes, %q; want reply, %d bytes, mac", got[0], len(got[1]), got[2], directWriteMax)
	}
}

func TestWriteBehindDirectWriteErrorSticks(t *testing.T) {
	conn := newBlockingConn()
	w := newWriteBehind(conn)
	broken := errors.New("broken pipe")
	go func() { conn.release <- broken }()
	if _, err := w.Write([]byte("reply")); !errors.Is(err, broken) {
		t.Fatalf("a direct write returned %v, want the socket's error", err)
	}
	if _, err := w.Write([]byte(packetPiece('n'))); !errors.Is(err, broken) {
		t.Errorf("the write after a failed one returned %v, want the socket's error", err)
	}
	w.close()
}
