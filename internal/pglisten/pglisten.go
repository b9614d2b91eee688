// Package pglisten keeps in-memory copies of database state current across
// nodes with PostgreSQL LISTEN/NOTIFY. Writers notify a channel in the
// transaction that changes the state (usually from a trigger, so the
// notification goes out at commit and only if it commits). Each node holds
// one notification connection (Start), on which every copy's owner listens
// to its channel (Listener.Listen): the connection hands each notification's
// payload to the channel's owner and tells every owner when notifications
// may have been missed, so that it re-reads everything and, while the
// connection is down, trusts its copies only briefly.
package pglisten

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// Reconnection back-off and liveness probing of the notification connection.
// A dead TCP connection can go unnoticed without traffic, so the listener
// pings it (lib/pq's Listener documentation recommends about every 90
// seconds).
const (
	minReconnect = 100 * time.Millisecond
	maxReconnect = 10 * time.Second
	pingEvery    = 60 * time.Second
)

// maxQueued is how many notifications an owner may fall behind by; past
// it they are dropped and the owner resyncs instead, so that a slow owner
// neither holds memory without bound nor delays the others.
const maxQueued = 4096

// Handler is what a Listen reports to: the owner of an in-memory copy.
type Handler struct {
	// Name prefixes log lines, e.g. "policy".
	Name string
	// Notify receives each notification's payload.
	Notify func(payload string)
	// Resync runs once the connection listens, at first and after every
	// reconnection: notifications sent meanwhile are lost, so everything
	// may have changed.
	Resync func()
	// Listening is told whether notifications are arriving: false from the
	// moment the connection is lost (or Listen ends) until it listens again.
	// While false the owner should re-read its copies after a short age.
	Listening func(bool)
	// Fallback completes the warning logged when the connection is lost,
	// e.g. "re-reading policies every 1s".
	Fallback string
	Log      *slog.Logger
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// Listener is a node's notification connection, shared by the owners of
// every copy, each on a channel of its own. It reconnects when the
// connection is lost, and then tells every owner to resync.
type Listener struct {
	pq   *pq.Listener
	log  *slog.Logger
	ctx  context.Context // Start's: once it ends, the connection's events are not news
	done chan struct{}   // closed when the connection is closed for good
	err  error           // why, once done is closed

	mu      sync.Mutex
	subs    map[string]*subscription // by channel
	leaving map[string]chan struct{} // channels being given up, until UNLISTEN is done
}

// Start connects to dsn for notifications, in the background, and keeps the
// connection until ctx ends. log receives the connection's events; each
// owner's own lines go to its Handler's Log.
func Start(ctx context.Context, dsn string, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	l := &Listener{log: log, ctx: ctx, done: make(chan struct{}), subs: map[string]*subscription{}, leaving: map[string]chan struct{}{}}
	l.pq = pq.NewListener(dsn, minReconnect, maxReconnect, l.event)
	go l.run(ctx)
	return l
}

// Run holds a connection of its own to dsn that listens on channel and
// reports to h until ctx ends: Start and Listen for a single owner.
func Run(ctx context.Context, dsn, channel string, h Handler) error {
	return Start(ctx, dsn, h.Log).Listen(ctx, channel, h)
}

// event runs on lib/pq's goroutine. Once the listener was told to stop, a
// connection attempt cut short or a connection lost is the stop itself
// (lib/pq's Close waits for an attempt in progress, which the database's
// own shutdown may end first), and saying so would send an operator looking
// for a fault; the owners hear of the end from their Listen.
func (l *Listener) event(ev pq.ListenerEventType, err error) {
	if l.ctx.Err() != nil {
		return
	}
	switch ev {
	case pq.ListenerEventDisconnected:
		for _, s := range l.subscriptions() {
			s.h.Listening(false)
			s.h.log().Warn(s.h.Name+": notification connection lost; "+s.h.Fallback, "err", err)
		}
	case pq.ListenerEventReconnected:
		l.log.Info(l.names() + ": notification connection back")
	case pq.ListenerEventConnectionAttemptFailed:
		l.log.Warn(l.names()+": cannot connect for notifications", "err", err)
	}
}

// run hands notifications to their owners and pings the connection until
// ctx ends, then closes it.
func (l *Listener) run(ctx context.Context) {
	// Listen blocks until a connection is made; closing ends the wait.
	stop := context.AfterFunc(ctx, func() { l.pq.Close() }) //nolint:errcheck // closing; nothing left to report
	defer stop()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			l.end(ctx.Err())
			return
		case n, ok := <-l.pq.Notify:
			switch {
			case !ok:
				if ctx.Err() != nil {
					l.end(ctx.Err())
				} else {
					l.end(errors.New(l.names() + ": notification connection closed"))
				}
				return
			case n == nil:
				// lib/pq sends nil after reconnecting: every owner missed
				// what was sent meanwhile.
				for _, s := range l.subscriptions() {
					s.listens()
					channelListens(s.channel)
				}
			case probe(n.Channel, n.Extra):
			default:
				l.mu.Lock()
				s := l.subs[n.Channel]
				l.mu.Unlock()
				if s != nil && s.active.Load() {
					s.notify(n.Extra)
				}
			}
		case <-ping.C:
			// A failed ping makes the listener reconnect; its events say so.
			_ = l.pq.Ping()
		}
	}
}

func (l *Listener) end(err error) {
	l.err = err
	close(l.done)
	_ = l.pq.Close()
	// lib/pq's goroutine may still have notifications to hand over before
	// it sees the close: take them, so that it ends.
	go func() {
		for range l.pq.Notify {
		}
	}()
}

// subscriptions are the owners that listen now.
func (l *Listener) subscriptions() []*subscription {
	l.mu.Lock()
	defer l.mu.Unlock()
	subs := make([]*subscription, 0, len(l.subs))
	for _, s := range l.subs {
		if s.active.Load() {
			subs = append(subs, s)
		}
	}
	return subs
}

// names prefixes the connection's log lines: its owners' names.
func (l *Listener) names() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for _, s := range l.subs {
		names = append(names, s.h.Name)
	}
	if len(names) == 0 {
		return "notifications"
	}
	return strings.Join(names, ", ")
}

// Listen listens on channel and reports to h until ctx ends (or the
// connection is closed for good). It returns ctx.Err() when ctx ends, or an
// error if the server refused to LISTEN, the channel has an owner already,
// or the connection was closed. h's functions run on Listen's goroutine,
// except Listening(false), which lib/pq's goroutine may call.
func (l *Listener) Listen(ctx context.Context, channel string, h Handler) error {
	s := &subscription{h: h, channel: channel, wake: make(chan struct{}, 1)}
	if err := l.subscribe(ctx, channel, s); err != nil {
		return err
	}
	// LISTEN waits for a connection; ctx's end or the connection's ends the
	// wait, and the channel is then given up once the LISTEN is done.
	listened := make(chan error, 1)
	go func() { listened <- l.pq.Listen(channel) }()
	select {
	case err := <-listened:
		if err != nil {
			l.unsubscribe(channel, listened, err)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			select {
			case <-l.done:
				return l.err
			default:
			}
			return fmt.Errorf("%s: listen: %w", h.Name, err)
		}
	case <-ctx.Done():
		l.unsubscribe(channel, listened, nil)
		return ctx.Err()
	case <-l.done:
		l.unsubscribe(channel, listened, nil)
		return l.err
	}
	listened <- nil
	defer l.unsubscribe(channel, listened, nil)
	// Whatever changed before the LISTEN took effect was not notified.
	s.active.Store(true)
	s.listens()
	channelListens(channel)
	defer h.Listening(false)
	h.log().Info(h.Name+": listening for changes", "channel", channel)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return l.err
		case <-s.wake:
		}
		for {
			resync, relisten, payloads := s.take()
			if !resync && len(payloads) == 0 {
				break
			}
			if resync {
				h.Resync()
			}
			if relisten {
				h.Listening(true)
			}
			for _, p := range payloads {
				h.Notify(p)
			}
		}
	}
}

// subscribe makes s the owner of channel, once a previous owner has given
// it up.
func (l *Listener) subscribe(ctx context.Context, channel string, s *subscription) error {
	for {
		l.mu.Lock()
		if l.subs[channel] != nil {
			l.mu.Unlock()
			return fmt.Errorf("%s: channel %s has a listener already", s.h.Name, channel)
		}
		left := l.leaving[channel]
		if left == nil {
			l.subs[channel] = s
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		select {
		case <-left:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return l.err
		}
	}
}

// unsubscribe gives channel up: it has no owner at once, and the connection
// stops listening on it once LISTEN is answered (by listened) when it was
// not refused (failed). UNLISTEN is not waited for: a stalled connection
// must not hold the owner's end.
func (l *Listener) unsubscribe(channel string, listened chan error, failed error) {
	left := make(chan struct{})
	l.mu.Lock()
	delete(l.subs, channel)
	l.leaving[channel] = left
	l.mu.Unlock()
	go func() {
		if failed == nil && <-listened == nil {
			_ = l.pq.Unlisten(channel)
		}
		l.mu.Lock()
		delete(l.leaving, channel)
		l.mu.Unlock()
		close(left)
	}()
}

// subscription is one owner's queue: the notifications its Listen has yet
// to hand over, and whether it must resync first.
type subscription struct {
	h       Handler
	channel string
	active  atomic.Bool // LISTEN took effect
	wake    chan struct{}

	mu       sync.Mutex
	mustSync bool // notifications were missed
	relisten bool // because the connection listens again
	queue    []string
}

func (s *subscription) notify(payload string) {
	s.mu.Lock()
	if len(s.queue) < maxQueued {
		s.queue = append(s.queue, payload)
	} else {
		s.queue, s.mustSync = nil, true
	}
	s.mu.Unlock()
	s.signal()
}

// listens records that the connection listens (again) on the channel: what
// is queued is dropped, the owner re-reads everything instead and is told
// that notifications arrive again. (An overflowing queue only resyncs: see
// notify.)
func (s *subscription) listens() {
	s.mu.Lock()
	s.queue, s.mustSync, s.relisten = nil, true, true
	s.mu.Unlock()
	s.signal()
}

func (s *subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) take() (resync, relisten bool, payloads []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resync, relisten, payloads = s.mustSync, s.relisten, s.queue
	s.mustSync, s.relisten, s.queue = false, false, nil
	return resync, relisten, payloads
}
