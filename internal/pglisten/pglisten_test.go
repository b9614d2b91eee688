package pglisten_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/testkit"
)

const channel = "pglisten_test"

// wait bounds every step: reconnecting after a restart takes up to Run's
// longest back-off (10 s) after the server is back.
const wait = 45 * time.Second

// Events as the recorder writes them.
const (
	resync       = "resync"
	listening    = "listening true"
	notListening = "listening false"
)

// recorder is a Handler that writes what it is told, in order, to a
// channel the test reads.
type recorder struct {
	events chan string
	log    testkit.SyncBuffer
}

func newRecorder() *recorder {
	return &recorder{events: make(chan string, 1000)}
}

func (r *recorder) handler() pglisten.Handler {
	return pglisten.Handler{
		Name:   "pglisten test",
		Notify: func(payload string) { r.events <- "notify " + payload },
		Resync: func() { r.events <- resync },
		Listening: func(on bool) {
			if on {
				r.events <- listening
			} else {
				r.events <- notListening
			}
		},
		Fallback: "re-reading every 1s",
		Log:      slog.New(slog.NewTextHandler(&r.log, nil)),
	}
}

// expect fails unless the next events are want, in this order.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-r.events:
			if got != w {
				t.Fatalf("got %q, want %q", got, w)
			}
		case <-time.After(wait):
			t.Fatalf("no %q within %v", w, wait)
		}
	}
}

// expectNone fails if an event has arrived or arrives within d.
func (r *recorder) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-r.events:
		t.Fatalf("unexpected %q", got)
	default:
	}
	select {
	case got := <-r.events:
		t.Fatalf("unexpected %q", got)
	case <-time.After(d):
	}
}

// startRun runs Run in a goroutine until stop (see runUntilStopped).
func startRun(t *testing.T, dsn string, r *recorder) (stop func()) {
	t.Helper()
	return runUntilStopped(t, context.Background(), "Run", func(ctx context.Context) error {
		return pglisten.Run(ctx, dsn, channel, r.handler())
	})
}

// runUntilStopped runs fn in a goroutine on a context of its own, under
// parent. stop ends that context and fails the test unless fn then returns
// context.Canceled promptly; it runs when the test ends if the test has
// not called it.
func runUntilStopped(t *testing.T, parent context.Context, name string, fn func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("%s returned %v, want context.Canceled", name, err)
				}
			case <-time.After(wait):
				t.Errorf("%s did not return within %v of its context ending", name, wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// notify sends a notification on a connection of its own, so that it works
// across server restarts.
func notify(t *testing.T, dsn, ch, payload string) {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := db.ExecContext(ctx, "SELECT pg_notify($1, $2)", ch, payload); err != nil {
		t.Fatalf("notify %s: %v", ch, err)
	}
}

func TestRunDeliversNotificationsInOrder(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.PrivateServer(t)
	dsn := s.URL("postgres")
	r := newRecorder()
	stop := startRun(t, dsn, r)

	// Whatever changed before LISTEN took effect was missed: the owner
	// re-reads before it is told notifications arrive.
	r.expect(t, resync, listening)

	notify(t, dsn, channel, "account 1")
	notify(t, dsn, "another_channel", "not for us")
	notify(t, dsn, channel, "")
	notify(t, dsn, channel, "account 2")
	r.expect(t, "notify account 1", "notify ", "notify account 2")
	r.expectNone(t, 200*time.Millisecond)

	stop()
	// The owner goes back to trusting its copies only briefly.
	r.expect(t, notListening)
}

func TestRunResyncsAfterTheServerRestarts(t *testing.T) {
	t.Parallel()
	s, opts := pgtest.PrivateServer(t)
	dsn := s.URL("postgres")
	r := newRecorder()
	startRun(t, dsn, r)
	r.expect(t, resync, listening)
	notify(t, dsn, channel, "before")
	r.expect(t, "notify before")

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	r.expect(t, notListening)
	if log := r.log.String(); !strings.Contains(log, "pglisten test: notification connection lost; re-reading every 1s") {
		t.Errorf("the lost connection is not logged with the fallback; log:\n%s", log)
	}
	// Nothing else while the server is down: no resync until it listens.
	r.expectNone(t, time.Second)

	// Same data directory and port: the address Run was given.
	opts.Port = s.Port()
	pgtest.StartServer(t, opts)
	r.expect(t, resync, listening)
	notify(t, dsn, channel, "after")
	r.expect(t, "notify after")
}

func TestRunEndsWhileNoServerAnswers(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	r := newRecorder()
	stop := startRun(t, "postgres://skiff@"+addr+"/postgres?sslmode=disable&connect_timeout=5", r)
	// Long enough for a few connection attempts.
	time.Sleep(500 * time.Millisecond)
	stop()
	// It never listened, so it never told the owner to trust its copies.
	r.expectNone(t, 0)
	if log := r.log.String(); !strings.Contains(log, "pglisten test: cannot connect for notifications") {
		t.Errorf("failed connection attempts are not logged; log:\n%s", log)
	}
}

// listenOn runs l.Listen for r until stop (see runUntilStopped).
func listenOn(t *testing.T, ctx context.Context, l *pglisten.Listener, ch string, r *recorder) (stop func()) {
	t.Helper()
	return runUntilStopped(t, ctx, "Listen("+ch+")", func(ctx context.Context) error {
		return l.Listen(ctx, ch, r.handler())
	})
}

// listenBackends counts the server's connections named app.
func listenBackends(t *testing.T, dsn, app string) int {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// terminateBackends ends the server's connections named app, as a lost
// connection.
func terminateBackends(t *testing.T, dsn, app string) {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
		t.Fatal(err)
	}
}

// One connection serves every owner: each hears its own channel only, a
// reconnection makes every one of them resync, and one owner's end leaves
// the others listening.
func TestListenerSharesOneConnection(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.PrivateServer(t)
	dsn := s.URL("postgres")
	const app = "pglisten_shared"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := pglisten.Start(ctx, dsn+"&application_name="+app, nil)

	channels := []string{"owner_a", "owner_b", "owner_c"}
	owners := map[string]*recorder{}
	stops := map[string]func(){}
	for _, ch := range channels {
		owners[ch] = newRecorder()
		stops[ch] = listenOn(t, ctx, l, ch, owners[ch])
	}
	for _, ch := range channels {
		owners[ch].expect(t, resync, listening)
	}
	if n := listenBackends(t, dsn, app); n != 1 {
		t.Fatalf("%d connections listen for %d owners, want 1", n, len(channels))
	}
	if err := l.Listen(ctx, "owner_a", newRecorder().handler()); err == nil {
		t.Error("a second owner of a channel was accepted")
	}

	for _, ch := range channels {
		notify(t, dsn, ch, "for "+ch)
	}
	for _, ch := range channels {
		owners[ch].expect(t, "notify for "+ch)
		owners[ch].expectNone(t, 0)
	}

	// The connection is lost: every owner stops trusting its copies, and
	// once it is back every owner re-reads everything.
	terminateBackends(t, dsn, app)
	for _, ch := range channels {
		owners[ch].expect(t, notListening, resync, listening)
	}
	for _, ch := range channels {
		notify(t, dsn, ch, "again "+ch)
		owners[ch].expect(t, "notify again "+ch)
	}
	if n := listenBackends(t, dsn, app); n != 1 {
		t.Fatalf("%d connections after the reconnection, want 1", n)
	}

	// One owner ends; the others still hear theirs.
	stops["owner_a"]()
	owners["owner_a"].expect(t, notListening)
	notify(t, dsn, "owner_a", "nobody")
	notify(t, dsn, "owner_b", "still")
	owners["owner_b"].expect(t, "notify still")
	owners["owner_a"].expectNone(t, 200*time.Millisecond)
	// Its channel may have another owner.
	again := newRecorder()
	listenOn(t, ctx, l, "owner_a", again)
	again.expect(t, resync, listening)
	notify(t, dsn, "owner_a", "new owner")
	again.expect(t, "notify new owner")
}
