package vfs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
