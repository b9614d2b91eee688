package sftpsessions

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/tenant"
)

// EventsChannel is the PostgreSQL notification channel of session changes
// (migration 00120).
const EventsChannel = "skiff_sftp_sessions"

// EventKind is what happened to a session.
type EventKind string

const (
	Started      EventKind = "STARTED"       // a session began (its row was published)
	Updated      EventKind = "UPDATED"       // its bytes or operation changed
	Ended        EventKind = "ENDED"         // it ended, or its node stopped
	EndRequested EventKind = "END_REQUESTED" // an owner, administrator or staff asked for its end
)

// Event is one change to a session, on any node. It names the session
// only: listeners read what they need, under their own principal.
type Event struct {
	AccountID string
	SessionID string
	Kind      EventKind
	UserID    string // the session's user
}

// parseEvent reads a notification's payload: "<account> <session> <kind> <user>".
func parseEvent(payload string) (Event, bool) {
	f := strings.Fields(payload)
	if len(f) != 4 || !tenant.IsUUID(f[0]) || !tenant.IsUUID(f[1]) || !tenant.IsUUID(f[3]) {
		return Event{}, false
	}
	switch k := EventKind(f[2]); k {
	case Started, Updated, Ended, EndRequested:
		return Event{AccountID: f[0], SessionID: f[1], Kind: k, UserID: f[3]}, true
	}
	return Event{}, false
}

// Events fans the session notifications out to this node's listeners: the
// SFTP server (to end the sessions it holds) and GraphQL subscriptions. One
// database connection listens for them all. The zero value is ready.
type Events struct {
	mu        sync.Mutex
	next      int
	listeners map[int]func(Event)
	resyncs   map[int]func()
}

// Subscribe calls fn with every event from now on, and resync (if not nil)
// when notifications may have been missed. fn runs on the listening
// goroutine and must not block. cancel stops the calls.
func (e *Events) Subscribe(fn func(Event), resync func()) (cancel func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listeners == nil {
		e.listeners, e.resyncs = map[int]func(Event){}, map[int]func(){}
	}
	id := e.next
	e.next++
	e.listeners[id] = fn
	if resync != nil {
		e.resyncs[id] = resync
	}
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.listeners, id)
		delete(e.resyncs, id)
	}
}

// Publish hands ev to every listener, as a notification does.
func (e *Events) Publish(ev Event) {
	e.mu.Lock()
	fns := make([]func(Event), 0, len(e.listeners))
	for _, fn := range e.listeners {
		fns = append(fns, fn)
	}
	e.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

func (e *Events) resync() {
	e.mu.Lock()
	fns := make([]func(), 0, len(e.resyncs))
	for _, fn := range e.resyncs {
		fns = append(fns, fn)
	}
	e.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Listen hears EventsChannel at dsn and publishes each event until ctx
// ends. Losing the connection is logged; the nodes' refreshes still end
// requested sessions (Node.Publish), a few seconds later.
func (e *Events) Listen(ctx context.Context, dsn string, log *slog.Logger) error {
	return e.ListenOn(ctx, pglisten.Start(ctx, dsn, log), log)
}

// ListenOn is Listen on the node's shared notification connection l.
func (e *Events) ListenOn(ctx context.Context, l *pglisten.Listener, log *slog.Logger) error {
	return l.Listen(ctx, EventsChannel, pglisten.Handler{
		Name: "sftp sessions",
		Notify: func(payload string) {
			if ev, ok := parseEvent(payload); ok {
				e.Publish(ev)
			}
		},
		Resync:    e.resync,
		Listening: func(bool) {},
		Fallback:  "sessions end at their node's next refresh instead",
		Log:       log,
	})
}
