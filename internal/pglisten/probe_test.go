package pglisten_test

import (
	"context"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/internal/pgtest"
)

// The probe observer hears when a channel listens, at first and again after
// a lost connection (a probe sent before may never come back), and each
// probe of this process that comes back, with when it was sent. Not
// parallel: the observer is the process's.
func TestProbesAndListening(t *testing.T) {
	s, _ := pgtest.PrivateServer(t)
	dsn := s.URL("postgres")
	const app, ch = "pglisten_probes", "probe_test"
	events := make(chan string, 100)
	received := make(chan time.Time, 100)
	pglisten.ObserveProbes(func(channel string, sent time.Time) {
		if channel == ch {
			received <- sent
		}
	}, func(channel string, _ time.Time) {
		if channel == ch {
			events <- "listening"
		}
	})
	t.Cleanup(func() { pglisten.ObserveProbes(nil, nil) })
	next := func(what string) {
		t.Helper()
		select {
		case got := <-events:
			if got != what {
				t.Fatalf("got %q, want %q", got, what)
			}
		case <-time.After(wait):
			t.Fatalf("no %q within %v", what, wait)
		}
	}
	probeComesBack := func() {
		t.Helper()
		sent := time.Now()
		notify(t, dsn, ch, pglisten.ProbePayload(sent))
		select {
		case got := <-received:
			if !got.Equal(sent.Round(0)) {
				t.Fatalf("a probe sent at %v came back as sent at %v", sent, got)
			}
		case <-time.After(wait):
			t.Fatalf("the probe did not come back within %v", wait)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := pglisten.Start(ctx, dsn+"&application_name="+app, nil)
	r := newRecorder()
	listenOn(t, ctx, l, ch, r)
	r.expect(t, resync, listening)
	next("listening")
	probeComesBack()
	r.expectNone(t, 0) // a probe is never the owner's

	terminateBackends(t, dsn, app)
	r.expect(t, notListening, resync, listening)
	next("listening")
	probeComesBack()
}
