package vfs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/sftp/vfs"
)

// The database is down: the gate cannot tell.
var errOutage = fmt.Errorf("%w: connection refused", vfs.ErrGateUnavailable)

// A gate that cannot answer is not a refusal: the session keeps its last
// known rights for the grace period, asking again meanwhile, and a
// refusal ends it as soon as the gate answers again. Before, the first
// failed check ended the session for good.
func TestGateOutageKeepsRightsUntilTheGateAnswers(t *testing.T) {
	e := newEnv(t)
	up, err := e.client.Create("up.bin")
	if err != nil {
		t.Fatal(err)
	}
	e.gate.set(errOutage)
	for range 10 {
		e.clock.Advance(1100 * time.Millisecond) // past the cached yes each time
		if _, err := up.Write([]byte("data")); err != nil {
			t.Fatalf("write during the outage: %v", err)
		}
		if _, err := e.client.Stat("/My Files"); err != nil {
			t.Fatalf("stat during the outage: %v", err)
		}
	}
	if err := up.Close(); err != nil {
		t.Fatalf("the upload during the outage: %v", err)
	}
	calls := e.gate.count()
	if calls < 2 {
		t.Errorf("gate asked %d times during the outage; want it asked again", calls)
	}

	// The database answers again: the user's access was withdrawn.
	e.gate.set(errors.New("SFTP access is off for the user"))
	e.clock.Advance(1100 * time.Millisecond)
	testkit.Eventually(t, "the session to end once the gate answers no", func() bool {
		_, err := e.client.Stat("/My Files")
		return err != nil
	})
	if err := <-e.served; !errors.Is(err, vfs.ErrDenied) || !strings.Contains(err.Error(), "SFTP access is off") {
		t.Errorf("Serve = %v; want ErrDenied with the gate's reason", err)
	}
	e.served = nil
}

// Past the grace period without an answer, the session ends.
func TestGateOutageBeyondGraceEndsSession(t *testing.T) {
	e := newEnv(t, func(c *vfs.Config) { c.Grace = 10 * time.Second })
	e.gate.set(errOutage)
	e.clock.Advance(5 * time.Second)
	if _, err := e.client.Stat("/My Files"); err != nil {
		t.Fatalf("within the grace period: %v", err)
	}
	e.clock.Advance(6 * time.Second)
	testkit.Eventually(t, "the session to end past the grace period", func() bool {
		_, err := e.client.Stat("/My Files")
		return err != nil
	})
	if err := <-e.served; !errors.Is(err, vfs.ErrDenied) || !strings.Contains(err.Error(), "could not be checked") {
		t.Errorf("Serve = %v; want ErrDenied saying access could not be checked", err)
	}
	e.served = nil
}

// Recheck asks the gate at once, whatever it cached, and ends an idle
// session it refuses; an outage does not end it.
func TestRecheckEndsIdleSession(t *testing.T) {
	e := newEnv(t)
	if _, err := e.client.Stat("/My Files"); err != nil {
		t.Fatal(err)
	}
	e.gate.set(errOutage)
	if err := e.session.Recheck(context.Background()); err != nil {
		t.Fatalf("Recheck during an outage = %v; want the last known rights", err)
	}
	e.gate.set(errors.New("key deleted"))
	if err := e.session.Recheck(context.Background()); err == nil {
		t.Fatal("Recheck did not report the refusal")
	}
	select {
	case err := <-e.served:
		if !errors.Is(err, vfs.ErrDenied) || !strings.Contains(err.Error(), "key deleted") {
			t.Errorf("Serve = %v; want ErrDenied with the gate's reason", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the idle session's channel is still served after Recheck refused")
	}
	e.served = nil
}

// clockedGate says yes until told otherwise, and moves the clock past the
// cache's second at every answer, so that each check asks it again.
type clockedGate struct {
	clock *clock
	mu    sync.Mutex
	yes   int // answers left to give as yes
}

func (g *clockedGate) Check(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.clock.Advance(2 * time.Second)
	if g.yes > 0 {
		g.yes--
		return nil
	}
	return errors.New("SFTP access is off for the user")
}

// A request asks the Gate once. A listing used to ask again for its "."
// and "..": when the cached yes expired in between and access had been
// withdrawn, the dots were left out, the client got its handle, and then
// the session ended with no answer to its next request — the client saw
// "connection lost", not "permission denied" (TestE2ESessionsEnd on a
// loaded machine). Now the listing opens, and the next request is refused.
func TestARequestAsksTheGateOnce(t *testing.T) {
	g := &clockedGate{}
	e := newEnv(t, func(c *vfs.Config) { c.Gate = g })
	g.clock = e.clock
	g.yes = 1 // OPENDIR's own check
	r := newRawInit(t, e.session)
	r.send(packet(11, u32(1), str("/My Files"))) // OPENDIR
	typ, b := r.recv()
	if typ != typeHandle {
		t.Fatalf("OPENDIR answered with a packet of type %d, want HANDLE", typ)
	}
	h, _ := splitString(t, b[4:])
	r.send(packet(12, u32(2), str(h))) // READDIR
	if code := r.status(2); code != codeDenied {
		t.Errorf("READDIR once access was withdrawn: status %d, want permission denied", code)
	}
	e.client.Stat("/My Files") // the env's own channel hears of it too
	if err := <-e.served; !errors.Is(err, vfs.ErrDenied) {
		t.Errorf("the env's channel: Serve = %v; want ErrDenied", err)
	}
	e.served = nil
}
