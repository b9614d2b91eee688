package sftp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"golang.org/x/crypto/ssh"
)

// drainSessions hands out sessions in turn busy with one upload (the
// first) and idle (the others); the test ends the upload by clearing busy.
type drainSessions struct {
	inner Sessions
	busy  atomic.Bool
	mu    sync.Mutex
	n     int
}

type drainSession struct {
	Session
	busy *atomic.Bool
}

func (s drainSession) Busy() bool { return s.busy != nil && s.busy.Load() }

func (s drainSession) Transfers() []vfs.Transfer {
	if !s.Busy() {
		return nil
	}
	return []vfs.Transfer{{Path: "/My Files/big.iso", Upload: true, Bytes: 123456}}
}

func (d *drainSessions) Open(ctx context.Context, l *sftplogin.Login) (Session, error) {
	sess, err := d.inner.Open(ctx, l)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if d.n == 1 {
		return drainSession{Session: sess, busy: &d.busy}, nil
	}
	return drainSession{Session: sess}, nil
}

func drainServer(t *testing.T) (*testServer, *drainSessions) {
	ds := &drainSessions{}
	ds.busy.Store(true)
	ts := passwordServer(t, func(c *Config) {
		ds.inner = c.Sessions
		c.Sessions = ds
	})
	return ts, ds
}

func waitClosed(c *ssh.Client, limit time.Duration) bool {
	done := make(chan struct{})
	go func() {
		c.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(limit):
		return false
	}
}

// Shutdown closes an idle session at once, refuses new channels on a
// busy one with a message, and cuts the busy one at the deadline with a
// log line naming the session, the path and the bytes.
func TestShutdownClosesIdleAndCutsTransfersAtDeadline(t *testing.T) {
	ts, _ := drainServer(t)
	busy, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustSFTP(t, busy)
	idle, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustSFTP(t, idle)

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(ctx) }()
	if !waitClosed(idle, time.Second) {
		t.Error("the idle session is still open a second into Shutdown")
	}
	if _, _, err := busy.OpenChannel("session", nil); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("new channel while draining: %v, want a refusal saying the server is shutting down", err)
	}
	if waitClosed(busy, 300*time.Millisecond) {
		t.Fatal("the session with an upload under way was closed before the deadline")
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline", err)
	}
	if !waitClosed(busy, time.Second) {
		t.Error("the busy session survived the deadline")
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, `msg="sftp transfer cut at shutdown" session=`) ||
		!strings.Contains(logs, `path="/My Files/big.iso" upload=true bytes=123456`) {
		t.Errorf("no log line for the cut transfer:\n%s", logs)
	}
}

// A session whose transfer ends during the drain is closed then, and
// Shutdown returns as soon as it is.
func TestShutdownWaitsForTransfers(t *testing.T) {
	ts, ds := drainServer(t)
	busy, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustSFTP(t, busy)
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	if waitClosed(busy, 300*time.Millisecond) {
		t.Fatal("the session with an upload under way was closed at once")
	}
	ds.busy.Store(false)
	if !waitClosed(busy, 2*time.Second) {
		t.Error("the session stayed open after its transfer ended")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("Shutdown did not return once the last transfer ended")
	}
	testkit.Eventually(t, "no connection left", func() bool { return ts.ActiveConnections() == 0 })
}
