package vfs_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
)

// These tests speak SFTP bytes to the server, to check what clients see but
// the client libraries smooth over: the version reply, limits, answers to
// malformed requests, write boundaries, ordering, goroutines.

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func str(s string) []byte { return append(u32(uint32(len(s))), s...) }

// packet builds an SFTP packet of a type and fields.
func packet(typ byte, fields ...[]byte) []byte {
	body := []byte{typ}
	for _, f := range fields {
		body = append(body, f...)
	}
	return append(u32(uint32(len(body))), body...)
}

// Packet types and status codes the tests use.
const (
	typeInit, typeVersion                 = 1, 2
	typeOpen, typeClose, typeRead         = 3, 4, 5
	typeWrite, typeStat, typeRealpath     = 6, 17, 16
	typeStatus, typeHandle, typeData      = 101, 102, 103
	typeName, typeAttrs                   = 104, 105
	typeExtended, typeExtendedReply       = 200, 201
	codeOK, codeEOF, codeDenied, codeFail = 0, 1, 3, 4
	codeBadMessage, codeUnsupported       = 5, 8
)

// raw is a client channel on a session that speaks SFTP bytes.
type raw struct {
	t      *testing.T
	conn   rawConn
	server *recorder
	served chan error
}

// rawConn is the client's end of a channel.
type rawConn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
}

// recorder is the server's end of the channel; it checks that every Write
// holds whole packets.
type recorder struct {
	net.Conn
	mu      sync.Mutex
	writes  int
	packets int
	split   int // writes that did not hold whole packets
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes++
	rest := p
	for len(rest) >= 4 {
		n := 4 + int(binary.BigEndian.Uint32(rest))
		if n > len(rest) {
			break
		}
		rest = rest[n:]
		r.packets++
	}
	if len(rest) != 0 {
		r.split++
	}
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// newRaw opens a channel on s without the INIT exchange.
func newRaw(t *testing.T, s *vfs.Session) *raw {
	t.Helper()
	server, client := net.Pipe()
	client.SetDeadline(time.Now().Add(20 * time.Second))
	r := &raw{t: t, conn: client, server: &recorder{Conn: server}, served: make(chan error, 1)}
	go func() { r.served <- s.Serve(r.server) }()
	t.Cleanup(func() { client.Close() })
	return r
}

// newRawInit opens a channel and finishes the version exchange.
func newRawInit(t *testing.T, s *vfs.Session) *raw {
	t.Helper()
	r := newRaw(t, s)
	r.send(packet(typeInit, u32(3)))
	if typ, _ := r.recv(); typ != typeVersion {
		t.Fatalf("reply to INIT of type %d", typ)
	}
	return r
}

func (r *raw) send(p []byte) {
	r.t.Helper()
	if _, err := r.conn.Write(p); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// recv reads a reply: its type and the fields after it.
func (r *raw) recv() (byte, []byte) {
	r.t.Helper()
	var l [4]byte
	if _, err := io.ReadFull(r.conn, l[:]); err != nil {
		r.t.Fatalf("recv: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(r.conn, body); err != nil {
		r.t.Fatalf("recv: %v", err)
	}
	return body[0], body[1:]
}

// status reads a reply that must be a STATUS for id and returns its code.
func (r *raw) status(id uint32) uint32 {
	r.t.Helper()
	typ, b := r.recv()
	if typ != typeStatus {
		r.t.Fatalf("reply of type %d, want STATUS", typ)
	}
	if got := binary.BigEndian.Uint32(b); got != id {
		r.t.Fatalf("status for request %d, want %d", got, id)
	}
	return binary.BigEndian.Uint32(b[4:])
}

// open opens a path and returns the handle.
func (r *raw) open(id uint32, p string, pflags uint32) []byte {
	r.t.Helper()
	r.send(packet(typeOpen, u32(id), str(p), u32(pflags), u32(0)))
	typ, b := r.recv()
	if typ != typeHandle {
		r.t.Fatalf("open %s: reply of type %d (%x)", p, typ, b)
	}
	return b[8:]
}

// closed reports whether the server closed the channel.
func (r *raw) closed() bool {
	r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := r.conn.Read(make([]byte, 1))
	return errors.Is(err, io.EOF)
}

func TestVersionAnnouncesExtensionsAndLimits(t *testing.T) {
	e := newEnv(t)
	r := newRaw(t, e.session)
	r.send(packet(typeInit, u32(3)))
	typ, b := r.recv()
	if typ != typeVersion || binary.BigEndian.Uint32(b) != 3 {
		t.Fatalf("reply %d %x; want VERSION 3", typ, b)
	}
	exts := extensionsOf(t, b)
	for _, want := range []string{"limits@openssh.com", "posix-rename@openssh.com", "statvfs@openssh.com", "fsync@openssh.com"} {
		if _, ok := exts[want]; !ok {
			t.Errorf("version reply announces %v; %s missing", exts, want)
		}
	}

	r.send(packet(typeExtended, u32(7), str("limits@openssh.com")))
	typ, b = r.recv()
	if typ != typeExtendedReply || len(b) != 4+32 || binary.BigEndian.Uint32(b) != 7 {
		t.Fatalf("limits reply %d %x", typ, b)
	}
	want := []uint64{256 * 1024, 255 * 1024, 255 * 1024, 1024}
	for i, w := range want {
		if got := binary.BigEndian.Uint64(b[4+8*i:]); got != w {
			t.Errorf("limits field %d = %d; want %d", i, got, w)
		}
	}
}

func splitString(t *testing.T, b []byte) (string, []byte) {
	t.Helper()
	if len(b) < 4 || int(binary.BigEndian.Uint32(b)) > len(b)-4 {
		t.Fatalf("truncated string in %x", b)
	}
	n := binary.BigEndian.Uint32(b)
	return string(b[4 : 4+n]), b[4+n:]
}

func TestMalformedRequestsAreAnswered(t *testing.T) {
	e := newEnv(t)
	r := newRawInit(t, e.session)
	for _, c := range []struct {
		name string
		pkt  []byte
		want uint32
	}{
		{"open without fields", packet(typeOpen, u32(1)), codeBadMessage},
		{"stat with a string longer than the packet", packet(typeStat, u32(2), u32(1000), []byte("abc")), codeBadMessage},
		{"read on an unknown handle", packet(typeRead, u32(3), str("nope"), u64(0), u32(10)), codeFail},
		{"write on an unknown handle", packet(typeWrite, u32(4), str("17"), u64(0), str("x")), codeFail},
		{"close of an unknown handle", packet(typeClose, u32(5), str("\xff\x00")), codeNoSuchFile}, // EBADF, as OpenSSH
		{"unknown type", packet(99, u32(6), str("x")), codeUnsupported},
		{"unknown extension", packet(typeExtended, u32(7), str("nosuch@example.com")), codeUnsupported},
		{"symlink", packet(20, u32(8), str("a"), str("b")), codeUnsupported},
		{"path with NUL", packet(typeStat, u32(9), str("/My Files/a\x00b")), codeFail},
		{"posix-rename without target", packet(typeExtended, u32(10), str("posix-rename@openssh.com"), str("a")), codeBadMessage},
	} {
		r.send(c.pkt)
		id := binary.BigEndian.Uint32(c.pkt[5:])
		if got := r.status(id); got != c.want {
			t.Errorf("%s: status %d; want %d", c.name, got, c.want)
		}
	}
	// The channel still works.
	r.send(packet(typeRealpath, u32(11), str(".")))
	typ, b := r.recv()
	if typ != typeName || !bytes.Contains(b, []byte("/My Files")) {
		t.Errorf("realpath . after bad requests: %d %q", typ, b)
	}
}

// TestTruncatedRequestsChangeNothing sends every request that has fields
// with its last field cut short, after fields that name real things: each
// is answered "bad message" and changes nothing.
func TestTruncatedRequestsChangeNothing(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "a.txt"), "hello")
	mustMkdir(t, filepath.Join(e.home(), "keep"))
	r := newRawInit(t, e.session)
	fh := str(string(r.open(1, "a.txt", 0x1|0x2)))
	r.send(packet(11, u32(2), str(".")))
	typ, b := r.recv()
	if typ != typeHandle {
		t.Fatalf("opendir: reply of type %d", typ)
	}
	dh := str(string(b[8:]))
	before := homeState(t, e)
	setAttrs := append(u32(0x1|0x8), append(u64(0), append(u32(1), u32(1)...)...)...)
	for i, c := range []struct {
		name   string
		typ    byte
		fields [][]byte
	}{
		{"open", typeOpen, [][]byte{str("new.txt"), u32(0x2 | 0x8 | 0x10), setAttrs}},
		{"close", typeClose, [][]byte{fh}},
		{"read", typeRead, [][]byte{fh, u64(0), u32(5)}},
		{"write", typeWrite, [][]byte{fh, u64(0), str("XXXXX")}},
		{"lstat", 7, [][]byte{str("a.txt")}},
		{"fstat", 8, [][]byte{fh}},
		{"setstat", 9, [][]byte{str("a.txt"), setAttrs}},
		{"fsetstat", 10, [][]byte{fh, setAttrs}},
		{"opendir", 11, [][]byte{str("keep")}},
		{"readdir", 12, [][]byte{dh}},
		{"remove", 13, [][]byte{str("a.txt")}},
		{"mkdir", 14, [][]byte{str("d"), setAttrs}},
		{"rmdir", 15, [][]byte{str("keep")}},
		{"realpath", typeRealpath, [][]byte{str(".")}},
		{"stat", typeStat, [][]byte{str("a.txt")}},
		{"rename", 18, [][]byte{str("a.txt"), str("b.txt")}},
		{"extension name", typeExtended, [][]byte{str("limits@openssh.com")}},
		{"posix-rename", typeExtended, [][]byte{str("posix-rename@openssh.com"), str("a.txt"), str("b.txt")}},
		{"statvfs", typeExtended, [][]byte{str("statvfs@openssh.com"), str(".")}},
		{"fsync", typeExtended, [][]byte{str("fsync@openssh.com"), fh}},
	} {
		id := uint32(10 + i)
		p := packet(c.typ, append([][]byte{u32(id)}, c.fields...)...)
		p = p[:len(p)-1]
		binary.BigEndian.PutUint32(p, uint32(len(p)-4))
		r.send(p)
		if got := r.status(id); got != codeBadMessage {
			t.Errorf("%s cut short: status %d; want bad message", c.name, got)
		}
	}
	if after := homeState(t, e); after != before {
		t.Errorf("home changed: %s; was %s", after, before)
	}
	r.send(packet(typeClose, u32(100), fh))
	if got := r.status(100); got != codeOK {
		t.Errorf("close of the file after the requests: status %d", got)
	}
}

// homeState describes the home's entries: names, kinds, sizes, times.
func homeState(t *testing.T, e *env) string {
	t.Helper()
	entries, err := readDirPath(e.home())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, de := range entries {
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %v %d %d; ", de.Name(), fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

func TestBadPacketsCloseTheChannel(t *testing.T) {
	for _, c := range []struct {
		name  string
		bytes []byte
		init  bool
	}{
		{"length over the maximum", u32(1 << 31), true},
		{"just over 256 KiB", append(u32(256*1024+1), typeStat), true},
		{"empty packet", u32(0), true},
		{"no request ID", packet(typeStat, []byte{0, 1}), true},
		{"first packet not INIT", packet(typeStat, u32(1), str("/")), false},
		{"second INIT", packet(typeInit, u32(3)), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			r := newRaw(t, e.session)
			if c.init {
				r.send(packet(typeInit, u32(3)))
				r.recv()
			}
			go r.conn.Write(c.bytes) // the server may close before reading it all
			if !r.closed() {
				t.Fatal("channel still open")
			}
			if err := <-r.served; err == nil || !strings.Contains(err.Error(), "protocol") {
				t.Errorf("Serve = %v; want a protocol violation", err)
			}
		})
	}
}

func TestHugeReadIsClamped(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "big"), strings.Repeat("0123456789abcdef", 1<<16))
	r := newRawInit(t, e.session)
	h := r.open(1, "big", 1)
	r.send(packet(typeRead, u32(2), str(string(h)), u64(5), u32(1<<32-1)))
	typ, b := r.recv()
	if typ != typeData {
		t.Fatalf("reply of type %d", typ)
	}
	if n := binary.BigEndian.Uint32(b[4:]); n != 255*1024 || len(b) != 8+255*1024 {
		t.Errorf("read of 4 GiB answered with %d bytes (packet %d); want 255 KiB", n, len(b))
	}
	if !bytes.HasPrefix(b[8:], []byte("56789abcdef0")) {
		t.Errorf("data starts %q", b[8:20])
	}
	r.send(packet(typeRead, u32(3), str(string(h)), u64(1<<62), u32(10)))
	if got := r.status(3); got != codeEOF {
		t.Errorf("read past the end: status %d; want EOF", got)
	}
}

func TestRequestsOnOneHandleTakeEffectInOrder(t *testing.T) {
	e := newEnv(t)
	r := newRawInit(t, e.session)
	h := str(string(r.open(1, "order.txt", 0x1|0x2|0x8|0x10)))
	// Pipelined, without waiting for replies: 200 writes to the same
	// bytes, then a read. Each write must land after the one before.
	const n = 200
	var batch []byte
	for i := range n {
		batch = append(batch, packet(typeWrite, u32(uint32(10+i)), h, u64(0), str(strings.Repeat(string(rune('a'+i%26)), 4096)))...)
	}
	batch = append(batch, packet(typeRead, u32(10+n), h, u64(0), u32(4096))...)
	go r.conn.Write(batch)
	for i := range n {
		if got := r.status(uint32(10 + i)); got != codeOK {
			t.Fatalf("write %d: status %d", i, got)
		}
	}
	typ, b := r.recv()
	want := strings.Repeat(string(rune('a'+(n-1)%26)), 4096)
	if typ != typeData || string(b[8:]) != want {
		t.Fatalf("read after the writes: type %d, %.8q…; want the last write's %.8q…", typ, b[8:], want)
	}
	r.send(packet(typeClose, u32(1000), h))
	if got := r.status(1000); got != codeOK {
		t.Fatalf("close: %d", got)
	}
	if got := mustRead(t, filepath.Join(e.home(), "order.txt")); got != want {
		t.Errorf("file holds %.8q…; want %.8q…", got, want)
	}
}

func TestEachReplyInOneWrite(t *testing.T) {
	e := newEnv(t)
	data := strings.Repeat("x", 3<<20+123)
	mustWrite(t, filepath.Join(e.home(), "f.bin"), data)
	server, client := net.Pipe()
	rec := &recorder{Conn: server}
	served := make(chan error, 1)
	go func() { served <- e.session.Serve(rec) }()
	c, err := sftp.NewClientPipe(client, client, sftp.MaxPacketUnchecked(255*1024))
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Open("/My Files/f.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || string(got) != data {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}
	f.Close()
	up, err := c.Create("/My Files/g.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadDir("/My Files"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if rec.split != 0 || rec.writes != rec.packets {
		t.Errorf("%d writes carried %d packets, %d writes not whole packets; want one write per packet", rec.writes, rec.packets, rec.split)
	}
	if rec.packets < 15 {
		t.Errorf("only %d packets seen", rec.packets)
	}
}

func TestIdleChannelsHoldOnlyTheirReader(t *testing.T) {
	e := newEnv(t)
	before := runtime.NumGoroutine()
	const n = 50
	var clients []*raw
	for range n {
		r := newRawInit(t, e.session)
		// A request, so the channel is past its first use.
		r.send(packet(typeStat, u32(1), str("/My Files")))
		if typ, _ := r.recv(); typ != typeAttrs {
			t.Fatalf("stat: reply %d", typ)
		}
		clients = append(clients, r)
	}
	// Each channel's Serve runs in a goroutine of this test: n are
	// expected. Writers exit once their replies are out.
	got := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = runtime.NumGoroutine() - before; got <= n {
			break
		}
	}
	if got > n+2 {
		t.Errorf("%d idle channels hold %d goroutines; want %d (one reader each)", n, got, n)
	}
	for _, r := range clients {
		r.conn.Close()
		if err := <-r.served; err != nil {
			t.Error(err)
		}
	}
}

func TestDenialStatusThenClose(t *testing.T) {
	e := newEnv(t)
	r := newRawInit(t, e.session)
	other := newRawInit(t, e.session)
	e.gate.set(errors.New("licence withdrawn"))
	e.clock.Advance(2 * time.Second)
	r.send(packet(typeStat, u32(42), str("/My Files")))
	if got := r.status(42); got != codeDenied {
		t.Errorf("stat after the gate closed: status %d; want permission denied", got)
	}
	if !r.closed() {
		t.Error("channel open after the refusal")
	}
	if err := <-r.served; !errors.Is(err, vfs.ErrDenied) {
		t.Errorf("Serve = %v; want ErrDenied", err)
	}
	// Another channel of the session: its next request is refused the
	// same way, whatever it is.
	other.send(packet(typeClose, u32(43), str("1")))
	if got := other.status(43); got != codeDenied {
		t.Errorf("other channel: status %d; want permission denied", got)
	}
	if !other.closed() {
		t.Error("other channel open after the refusal")
	}
	<-other.served
	// The env's own channel ends the same way.
	e.client.Close()
	e.conn.Close()
	if err := <-e.served; !errors.Is(err, vfs.ErrDenied) {
		t.Errorf("Serve = %v; want ErrDenied", err)
	}
	e.served = nil
}

// FuzzServe feeds arbitrary requests, after a valid INIT, to a session on a
// storage of its own. The server must answer or close, never panic or hang.
func FuzzServe(f *testing.F) {
	f.Add(packet(typeStat, u32(1), str("/My Files")))
	f.Add(append(packet(typeOpen, u32(1), str("a"), u32(0x1a), u32(0)),
		packet(typeWrite, u32(2), str("1"), u64(3), str("hello"))...))
	f.Add(packet(typeRead, u32(1), str("1"), u64(0), u32(1<<31)))
	f.Add(packet(typeExtended, u32(1), str("limits@openssh.com")))
	f.Add(packet(typeExtended, u32(1), str("statvfs@openssh.com"), str("/")))
	f.Add(packet(11, u32(1), str("/"))) // opendir
	f.Add(append(packet(11, u32(1), str("/My Files")), packet(12, u32(2), str("1"))...))
	f.Add(packet(9, u32(1), str("x"), u32(0x8000000f), u64(1), u32(0), u32(0), u32(0o644), u32(0), u32(0), u32(1), str("a"), str("b")))
	f.Add(u32(1 << 30))
	f.Add([]byte{0, 0, 0, 5, 3, 0})
	// The extensions of extensions.go, on a file the seed writes first.
	put := append(packet(typeOpen, u32(1), str("a"), u32(0x1b), u32(0)), packet(typeWrite, u32(2), str("1"), u64(0), str("hello world"))...)
	f.Add(append(put, packet(typeExtended, u32(3), str("copy-data"), str("1"), u64(2), u64(0), str("1"), u64(100))...))
	f.Add(append(put, packet(typeExtended, u32(3), str("check-file-handle"), str("1"), str("sha1,md5"), u64(1), u64(0), u32(256))...))
	f.Add(packet(typeExtended, u32(1), str("check-file-name"), str("a"), str("sha256"), u64(0), u64(0), u32(0)))
	f.Add(packet(typeExtended, u32(1), str("expand-path@openssh.com"), str("~/x/../y")))
	f.Add(packet(typeExtended, u32(1), str("users-groups-by-id@openssh.com"), str("\x00\x00\x00\x01"), str("")))
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) {
		store, err := storage.NewLocal(filepath.Join(base, t.Name()))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		// The account has a quota of 1 MiB, so that no input can make work
		// beyond a few seconds: without one a WRITE far past the end makes
		// a sparse file of any size, and check-file then reads it for
		// minutes — work the client asked for, which stops when the client
		// leaves (TestChecksumsStopWhenTheSessionEnds) but which this
		// harness, which never leaves, would wait for.
		s, err := vfs.NewSession(context.Background(), vfs.Config{
			AccountID: accountID, UserID: userID, Storage: store, Gate: &gate{},
			Quota:  newMemQuota(1 << 20),
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ch := &fuzzChannel{r: bytes.NewReader(append(packet(typeInit, u32(3)), in...))}
		done := make(chan struct{})
		go func() {
			s.Serve(ch)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Serve hangs")
		}
	})
}

type fuzzChannel struct{ r io.Reader }

func (c *fuzzChannel) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fuzzChannel) Write(p []byte) (int, error) { return len(p), nil }
func (c *fuzzChannel) Close() error                { return nil }

// TestChannelStartAllocatesLittle guards the cost of a login: starting a
// channel and answering its INIT must not take large buffers (pkg/sftp's
// request server took a zeroed 256 KiB page for the first packet).
func TestChannelStartAllocatesLittle(t *testing.T) {
	e := newEnv(t)
	newRawInit(t, e.session) // code paths and pools warmed once
	const n = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		r := newRawInit(t, e.session)
		r.conn.Close()
		<-r.served
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes per channel", per)
	if per > 32<<10 {
		t.Errorf("a channel's start allocates %d bytes; want under 32 KiB", per)
	}
}

// halfClosed is a channel whose client has sent everything and closed its
// side, but still reads until the server closes the channel.
type halfClosed struct {
	io.Reader
	mu     sync.Mutex
	out    bytes.Buffer
	closed bool
}

func (c *halfClosed) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	return c.out.Write(p)
}

func (c *halfClosed) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func TestRepliesSentAfterClientEOF(t *testing.T) {
	e := newEnv(t)
	var in bytes.Buffer
	in.Write(packet(typeInit, u32(3)))
	for i := range 40 {
		in.Write(packet(typeRealpath, u32(uint32(i)), str(".")))
	}
	ch := &halfClosed{Reader: &in}
	if err := e.session.Serve(ch); err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(ch.out.Bytes(), []byte("/My Files")); got != 40*2 {
		t.Errorf("%d of 40 realpath replies sent before the channel closed", got/2)
	}
}
