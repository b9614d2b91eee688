package vfs_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := readDirPath("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	return len(entries)
}

// settle waits (bounded) for goroutines of closed connections to return,
// and reports how many are left.
func settle(limit int) int {
	for range 500 {
		if n := runtime.NumGoroutine(); n <= limit {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

// drop cuts the connection without any SFTP close, as a crashing client or
// a dropped network would, and waits for Serve to return.
func (e *env) drop() error {
	e.conn.Close()
	err := <-e.served
	e.served = nil
	e.client.Close()
	e.client = nil
	return err
}

func homeEntries(t *testing.T, e *env) []string {
	t.Helper()
	entries, err := readDirPath(e.home())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range entries {
		out = append(out, de.Name())
	}
	return out
}

func TestDisconnectMidUploadLeavesNothing(t *testing.T) {
	fds, goroutines := openFDs(t), runtime.NumGoroutine()

	e := newEnv(t)
	if onS3 { // the S3 server the env started runs until the test ends
		fds, goroutines = openFDs(t), runtime.NumGoroutine()
	}
	mustWrite(t, filepath.Join(e.home(), "resume.bin"), "0123")
	resume, err := e.client.OpenFile("resume.bin", os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resume.WriteAt([]byte("45"), 4); err != nil {
		t.Fatal(err)
	}
	up, err := e.client.Create("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(make([]byte, 3<<20)); err != nil {
		t.Fatal(err)
	}
	// On the disk the upload in progress is a hidden file; on S3 a
	// multipart upload, which is not an entry.
	if got := homeEntries(t, e); !onS3 && (len(got) != 2 || !strings.HasPrefix(got[0], ".skiff-upload-")) {
		t.Fatalf("during the upload the home holds %q; want the hidden upload and resume.bin", got)
	}

	if err := e.drop(); err != nil {
		t.Errorf("Serve after a dropped client: %v; want nil", err)
	}
	if got := homeEntries(t, e); len(got) != 1 || got[0] != "resume.bin" {
		t.Errorf("after the drop the home holds %q; want only resume.bin", got)
	}
	// What a resume wrote in place stays: the client resumes from there.
	if got := mustRead(t, filepath.Join(e.home(), "resume.bin")); got != "012345" {
		t.Errorf("resume.bin = %q", got)
	}
	if err := e.session.Close(); err != nil {
		t.Fatal(err)
	}
	e.store.Close()
	if got := openFDs(t); got != fds {
		t.Errorf("open descriptors: %d before, %d after", fds, got)
	}
	if got := settle(goroutines); got > goroutines {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after\n%s", goroutines, got, buf[:runtime.Stack(buf, true)])
	}
}

func TestGateRefusalEndsSession(t *testing.T) {
	e := newEnv(t)
	for range 50 {
		if _, err := e.client.Stat("/My Files"); err != nil {
			t.Fatal(err)
		}
	}
	if e.gate.calls != 1 {
		t.Errorf("gate asked %d times for 50 operations within its cache time; want 1", e.gate.calls)
	}
	up, err := e.client.Create("up.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}

	e.gate.set(errors.New("user deleted"))
	if _, err := e.client.Stat("/My Files"); err != nil {
		t.Fatalf("within the cache time: %v; want the cached yes", err)
	}
	e.clock.Advance(1100 * time.Millisecond)
	if _, err := e.client.Stat("/My Files"); statusCode(err) != "permission denied" {
		t.Errorf("stat after the gate closed: %v; want permission denied", err)
	}
	if err := <-e.served; !errors.Is(err, vfs.ErrDenied) || !strings.Contains(err.Error(), "user deleted") {
		t.Errorf("Serve = %v; want ErrDenied with the gate's reason", err)
	}
	e.served = nil
	if _, err := e.client.Stat("/My Files"); err == nil {
		t.Error("the connection still answers after the gate closed")
	}
	if got := homeEntries(t, e); len(got) != 0 {
		t.Errorf("home holds %q; the open upload must be discarded", got)
	}
	// A new channel on the same connection is refused too.
	server, client := net.Pipe()
	defer client.Close()
	if err := e.session.Serve(server); !errors.Is(err, vfs.ErrClosed) {
		t.Errorf("Serve on a denied session = %v; want ErrClosed", err)
	}
}

func TestGateRefusalDuringDownload(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "f.bin"), strings.Repeat("x", 1<<20))
	f, err := e.client.Open("f.bin")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	e.gate.set(errors.New("module expired"))
	e.clock.Advance(2 * time.Second)
	if _, err := f.ReadAt(buf, 4096); err == nil {
		t.Error("reading an open file went on after the gate closed")
	}
	if err := <-e.served; !errors.Is(err, vfs.ErrDenied) {
		t.Errorf("Serve = %v; want ErrDenied", err)
	}
	e.served = nil
}

func TestContextEndsSession(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := vfs.NewSession(ctx, vfs.Config{
		AccountID: accountID, UserID: userID, Storage: store, Gate: &gate{},
	})
	if err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	defer client.Close()
	served := make(chan error, 1)
	go func() { served <- s.Serve(server) }()
	c, err := sftp.NewClientPipe(client, client) // returns once the server answers
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve after the connection's context ended: %v; want nil", err)
	}
	if _, err := c.Getwd(); err == nil {
		t.Error("the client is still served")
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewSessionRequiresStorageAndGate(t *testing.T) {
	if _, err := vfs.NewSession(context.Background(), vfs.Config{AccountID: accountID, UserID: userID}); err == nil {
		t.Error("a session without storage and gate was built")
	}
}

// stallingReader passes reads through until stalled is set; then reads
// wait for release, like a client that stopped reading.
type stallingReader struct {
	r       io.Reader
	stalled atomic.Bool
	release chan struct{}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.stalled.Load() {
		<-s.release
	}
	return s.r.Read(p)
}

// signallingWriter tells each completed write.
type signallingWriter struct {
	io.WriteCloser
	wrote chan struct{}
}

func (w *signallingWriter) Write(p []byte) (int, error) {
	n, err := w.WriteCloser.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func TestCloseWithClientNotReading(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s, err := vfs.NewSession(context.Background(), vfs.Config{
		AccountID: accountID, UserID: userID, Storage: store, Gate: &gate{},
	})
	if err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- s.Serve(server) }()
	rd := &stallingReader{r: client, release: make(chan struct{})}
	wr := &signallingWriter{WriteCloser: client, wrote: make(chan struct{}, 16)}
	c, err := sftp.NewClientPipe(rd, wr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(rd.release)
		c.Close()
	}()

	// The client stops reading; the server's answer to the next request
	// blocks in the channel's Write.
	rd.stalled.Store(true)
	for len(wr.wrote) > 0 {
		<-wr.wrote
	}
	go c.Getwd()
	<-wr.wrote // the server has read the request (net.Pipe is unbuffered)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close hangs while the client does not read")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
