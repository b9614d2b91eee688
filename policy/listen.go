package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Reconnection back-off and liveness probing of the notification connection.
// A dead TCP connection can go unnoticed without traffic, so Listen pings it
// (lib/pq's Listener documentation recommends about every 90 seconds).
const (
	minReconnect = 100 * time.Millisecond
	maxReconnect = 10 * time.Second
	pingEvery    = 60 * time.Second
)

// Listen keeps the enforcer current with changes committed on any node: it
// holds a connection to dsn (the database New reads) that listens on Channel
// and invalidates each account named by a notification, until ctx ends.
//
// While the connection is down the enforcer falls back to Options.MaxAge;
// when it comes back every account is invalidated, since notifications sent
// meanwhile are lost. Listen returns ctx.Err() when ctx ends, or an error if
// the server refused to LISTEN. Call it once per Enforcer, in a goroutine.
func (e *Enforcer) Listen(ctx context.Context, dsn string) error {
	l := pq.NewListener(dsn, minReconnect, maxReconnect, e.onListenerEvent)
	defer l.Close() //nolint:errcheck // closing; nothing left to report
	// Listen below blocks until a connection is made; ending ctx ends the wait.
	stop := context.AfterFunc(ctx, func() { l.Close() }) //nolint:errcheck
	defer stop()
	if err := l.Listen(Channel); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("policy: listen: %w", err)
	}
	// Whatever changed before the LISTEN took effect was not notified.
	e.InvalidateAll()
	e.listening.Store(true)
	defer e.listening.Store(false)
	e.log.Info("policy: listening for changes", "channel", Channel)

	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n, ok := <-l.Notify:
			switch {
			case !ok:
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("policy: notification connection closed")
			case n == nil:
				// lib/pq sends nil after reconnecting.
				e.InvalidateAll()
				e.listening.Store(true)
			default:
				e.Invalidate(n.Extra)
			}
		case <-ping.C:
			// A failed ping makes the listener reconnect; its events say so.
			_ = l.Ping()
		}
	}
}

// onListenerEvent runs on lib/pq's goroutine for connection changes.
func (e *Enforcer) onListenerEvent(ev pq.ListenerEventType, err error) {
	switch ev {
	case pq.ListenerEventDisconnected:
		// Notifications may be missed from now on: trust copies for MaxAge only.
		e.listening.Store(false)
		e.log.Warn("policy: notification connection lost; re-reading policies every "+e.opts.MaxAge.String(), "err", err)
	case pq.ListenerEventReconnected:
		e.log.Info("policy: notification connection back")
	case pq.ListenerEventConnectionAttemptFailed:
		e.log.Warn("policy: cannot connect for notifications", "err", err)
	}
}
