package vfs

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// wireRecorder is a channel that records each Write and reads from a script.
type wireRecorder struct {
	r      io.Reader
	mu     sync.Mutex
	writes [][]byte
}

func (r *wireRecorder) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *wireRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}
func (r *wireRecorder) Close() error { return nil }

func wirePacket(typ byte, body ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, typ}
	for _, x := range body {
		b = append(b, x...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func wireU32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func wireStr(s string) []byte { return append(wireU32(uint32(len(s))), s...) }

var testLimits = wireLimits{MaxPacketLength: 262144, MaxReadLength: 261120, MaxWriteLength: 261120}

func TestWireLimitsRequestIsAnsweredAndNotPassedOn(t *testing.T) {
	open := wirePacket(3, wireU32(7), wireStr("/a"), wireU32(1), wireU32(0)) // SSH_FXP_OPEN
	limits := wirePacket(fxpExtended, wireU32(42), wireStr(limitsExtension))
	statvfs := wirePacket(fxpExtended, wireU32(43), wireStr("statvfs@openssh.com"), wireStr("/"))
	big := wirePacket(6, wireU32(8), bytes.Repeat([]byte{'x'}, 70000)) // larger than any peek
	in := bytes.Join([][]byte{open, limits, statvfs, big}, nil)
	rec := &wireRecorder{r: bytes.NewReader(in)}
	c := newWireChannel(rec, wireConfig{Limits: testLimits, MaxInFlight: 100})

	got, err := io.ReadAll(smallReads{c})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Join([][]byte{open, statvfs, big}, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("server read %d bytes, want %d: the limits request must be the only thing removed", len(got), len(want))
	}
	if len(rec.writes) != 1 {
		t.Fatalf("%d writes to the client, want the one limits reply", len(rec.writes))
	}
	reply := rec.writes[0]
	wantReply := wirePacket(fxpExtendedReply, wireU32(42),
		binary.BigEndian.AppendUint64(nil, 262144), binary.BigEndian.AppendUint64(nil, 261120),
		binary.BigEndian.AppendUint64(nil, 261120), binary.BigEndian.AppendUint64(nil, 0))
	if !bytes.Equal(reply, wantReply) {
		t.Errorf("reply %x, want %x", reply, wantReply)
	}
}

// smallReads reads in small pieces, as a careless reader might, to exercise
// packet boundaries inside one Read.
type smallReads struct{ r io.Reader }

func (i smallReads) Read(p []byte) (int, error) { return i.r.Read(p[:min(len(p), 3)]) }

func TestWireTruncatedInputEndsLikeTheChannel(t *testing.T) {
	in := wirePacket(fxpExtended, wireU32(1), wireStr(limitsExtension))[:10]
	c := newWireChannel(&wireRecorder{r: bytes.NewReader(in)}, wireConfig{Limits: testLimits})
	got, err := io.ReadAll(c)
	if err == nil || !bytes.Equal(got, in) {
		t.Fatalf("got %x, %v; want the %d bytes then an error", got, err, len(in))
	}
	c = newWireChannel(&wireRecorder{r: bytes.NewReader(nil)}, wireConfig{Limits: testLimits})
	if n, err := c.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("empty channel: %d, %v; want 0, EOF", n, err)
	}
}

func TestWireVersionReplyAnnouncesLimits(t *testing.T) {
	rec := &wireRecorder{r: bytes.NewReader(nil)}
	c := newWireChannel(rec, wireConfig{Limits: testLimits, MaxInFlight: 100})
	v := wirePacket(fxpVersion, wireU32(3), wireStr("posix-rename@openssh.com"), wireStr("1"))
	if n, err := c.Write(v); n != len(v) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	want := wirePacket(fxpVersion, wireU32(3), wireStr("posix-rename@openssh.com"), wireStr("1"), wireStr(limitsExtension), wireStr("1"))
	if !bytes.Equal(rec.writes[0], want) {
		t.Errorf("version reply %q, want %q", rec.writes[0], want)
	}
}

func TestWireHeaderGoesOutWithData(t *testing.T) {
	rec := &wireRecorder{r: bytes.NewReader(nil)}
	c := newWireChannel(rec, wireConfig{Limits: testLimits, MaxInFlight: 100})
	data := bytes.Repeat([]byte{'d'}, 100000)
	header := wirePacket(103, wireU32(9), wireU32(uint32(len(data)))) // SSH_FXP_DATA without its data
	binary.BigEndian.PutUint32(header, uint32(len(header)-4+len(data)))
	status := wirePacket(101, wireU32(10), wireU32(0), wireStr(""), wireStr(""))
	for _, w := range [][]byte{header, data, status} {
		if n, err := c.Write(w); n != len(w) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got, want := bytes.Join(rec.writes, nil), bytes.Join([][]byte{header, data, status}, nil); !bytes.Equal(got, want) {
		t.Fatal("the bytes on the channel changed")
	}
	if len(rec.writes[0]) != sshChunk {
		t.Errorf("first write %d bytes, want the header with data up to %d", len(rec.writes[0]), sshChunk)
	}
	if len(rec.writes) != 3 {
		t.Errorf("%d writes, want 3 (header+chunk, rest of data, status)", len(rec.writes))
	}
}

// TestPkgSFTPRoundTrip serves pkg/sftp's request server through the
// wrapper and moves a file both ways with pkg/sftp's client.
func TestWirePkgSFTPRoundTrip(t *testing.T) {
	cs, ss := net.Pipe()
	srv := sftp.NewRequestServer(newWireChannel(ss, wireConfig{Limits: pkgSFTPLimits(261120), MaxInFlight: 2}), sftp.InMemHandler(),
		sftp.WithRSAllocator(), sftp.WithRSMaxTxPacket(261120))
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	client, err := sftp.NewClientPipe(cs, cs, sftp.MaxPacketUnchecked(261120))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("skiff "), 300000)
	f, err := client.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, err = client.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d identical", len(got), len(want))
	}
	client.Close()
	cs.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not end")
	}
}

// TestInFlightBound holds the third request back until a reply goes out.
func TestWireInFlightBound(t *testing.T) {
	var in bytes.Buffer
	for i := range 3 {
		in.Write(wirePacket(4, wireU32(uint32(i)), wireStr("h"))) // SSH_FXP_CLOSE
	}
	c := newWireChannel(&wireRecorder{r: &in}, wireConfig{Limits: testLimits, MaxInFlight: 2})
	one := len(wirePacket(4, wireU32(0), wireStr("h")))
	buf := make([]byte, 2*one)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(c, make([]byte, one))
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("third request read before any reply (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	status := wirePacket(101, wireU32(0), wireU32(0), wireStr(""), wireStr(""))
	if _, err := c.Write(status); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("third request still held after a reply")
	}
	// Two requests are unanswered again: Close must release a reader
	// waiting for a slot.
	in.Write(wirePacket(4, wireU32(3), wireStr("h")))
	go func() {
		_, err := io.ReadFull(c, make([]byte, one))
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("read after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the reader")
	}
}

// FuzzWireRead feeds arbitrary client bytes through the shim: it must never
// panic, and a stream that holds no limits request must reach the server
// byte for byte, however it is cut into packets.
func FuzzWireRead(f *testing.F) {
	f.Add(wirePacket(3, wireU32(7), wireStr("/a"), wireU32(1), wireU32(0)))
	f.Add(wirePacket(fxpExtended, wireU32(42), wireStr(limitsExtension)))
	f.Add(wirePacket(fxpExtended, wireU32(1), wireStr("statvfs@openssh.com"), wireStr("/")))
	f.Add([]byte{0, 0, 0, 0, fxpExtended})
	f.Add([]byte{0, 0, 0, 9, fxpExtended, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		rec := &wireRecorder{r: bytes.NewReader(in)}
		c := newWireChannel(rec, wireConfig{Limits: testLimits, MaxInFlight: len(in) + 1})
		got, _ := io.ReadAll(smallReads{c})
		if len(got) > len(in) {
			t.Fatalf("the server read %d bytes of a %d-byte stream", len(got), len(in))
		}
		if !bytes.Contains(in, []byte(limitsExtension)) && !bytes.Equal(got, in) {
			t.Fatalf("stream without a limits request changed:\n in %x\nout %x", in, got)
		}
		if len(rec.writes) > 0 && !bytes.Contains(in, []byte(limitsExtension)) {
			t.Fatalf("the shim wrote %d replies to a stream without a limits request", len(rec.writes))
		}
	})
}
