package sftpwire

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

// recorder is a channel that records each Write and reads from a script.
type recorder struct {
	r      io.Reader
	mu     sync.Mutex
	writes [][]byte
}

func (r *recorder) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}
func (r *recorder) Close() error { return nil }

func packet(typ byte, body ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, typ}
	for _, x := range body {
		b = append(b, x...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func str(s string) []byte { return append(u32(uint32(len(s))), s...) }

var testLimits = Limits{MaxPacketLength: 262144, MaxReadLength: 261120, MaxWriteLength: 261120}

func TestLimitsRequestIsAnsweredAndNotPassedOn(t *testing.T) {
	open := packet(3, u32(7), str("/a"), u32(1), u32(0)) // SSH_FXP_OPEN
	limits := packet(fxpExtended, u32(42), str(limitsExtension))
	statvfs := packet(fxpExtended, u32(43), str("statvfs@openssh.com"), str("/"))
	big := packet(6, u32(8), bytes.Repeat([]byte{'x'}, 70000)) // larger than any peek
	in := bytes.Join([][]byte{open, limits, statvfs, big}, nil)
	rec := &recorder{r: bytes.NewReader(in)}
	c := NewChannel(rec, Config{Limits: testLimits, MaxInFlight: 100})

	got, err := io.ReadAll(iotest{c})
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
	wantReply := packet(fxpExtendedReply, u32(42),
		binary.BigEndian.AppendUint64(nil, 262144), binary.BigEndian.AppendUint64(nil, 261120),
		binary.BigEndian.AppendUint64(nil, 261120), binary.BigEndian.AppendUint64(nil, 0))
	if !bytes.Equal(reply, wantReply) {
		t.Errorf("reply %x, want %x", reply, wantReply)
	}
}

// iotest reads in small pieces, as a careless reader might, to exercise
// packet boundaries inside one Read.
type iotest struct{ r io.Reader }

func (i iotest) Read(p []byte) (int, error) { return i.r.Read(p[:min(len(p), 3)]) }

func TestTruncatedInputEndsLikeTheChannel(t *testing.T) {
	in := packet(fxpExtended, u32(1), str(limitsExtension))[:10]
	c := NewChannel(&recorder{r: bytes.NewReader(in)}, Config{Limits: testLimits})
	got, err := io.ReadAll(c)
	if err == nil || !bytes.Equal(got, in) {
		t.Fatalf("got %x, %v; want the %d bytes then an error", got, err, len(in))
	}
	c = NewChannel(&recorder{r: bytes.NewReader(nil)}, Config{Limits: testLimits})
	if n, err := c.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("empty channel: %d, %v; want 0, EOF", n, err)
	}
}

func TestVersionReplyAnnouncesLimits(t *testing.T) {
	rec := &recorder{r: bytes.NewReader(nil)}
	c := NewChannel(rec, Config{Limits: testLimits, MaxInFlight: 100})
	v := packet(fxpVersion, u32(3), str("posix-rename@openssh.com"), str("1"))
	if n, err := c.Write(v); n != len(v) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	want := packet(fxpVersion, u32(3), str("posix-rename@openssh.com"), str("1"), str(limitsExtension), str("1"))
	if !bytes.Equal(rec.writes[0], want) {
		t.Errorf("version reply %q, want %q", rec.writes[0], want)
	}
}

func TestHeaderGoesOutWithData(t *testing.T) {
	rec := &recorder{r: bytes.NewReader(nil)}
	c := NewChannel(rec, Config{Limits: testLimits, MaxInFlight: 100})
	data := bytes.Repeat([]byte{'d'}, 100000)
	header := packet(103, u32(9), u32(uint32(len(data)))) // SSH_FXP_DATA without its data
	binary.BigEndian.PutUint32(header, uint32(len(header)-4+len(data)))
	status := packet(101, u32(10), u32(0), str(""), str(""))
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
func TestPkgSFTPRoundTrip(t *testing.T) {
	cs, ss := net.Pipe()
	srv := sftp.NewRequestServer(NewChannel(ss, Config{Limits: PkgSFTPLimits(261120), MaxInFlight: 2}), sftp.InMemHandler(),
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
func TestInFlightBound(t *testing.T) {
	var in bytes.Buffer
	for i := range 3 {
		in.Write(packet(4, u32(uint32(i)), str("h"))) // SSH_FXP_CLOSE
	}
	c := NewChannel(&recorder{r: &in}, Config{Limits: testLimits, MaxInFlight: 2})
	one := len(packet(4, u32(0), str("h")))
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
	status := packet(101, u32(0), u32(0), str(""), str(""))
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
	in.Write(packet(4, u32(3), str("h")))
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
