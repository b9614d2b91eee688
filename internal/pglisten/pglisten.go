// Package pglisten keeps in-memory copies of database state current across
// nodes with PostgreSQL LISTEN/NOTIFY. Writers notify a channel in the
// transaction that changes the state (usually from a trigger, so the
// notification goes out at commit and only if it commits); every node runs
// Run, which hands each notification's payload to the copy's owner and tells
// it when notifications may have been missed, so that it re-reads everything
// and, while the connection is down, trusts its copies only briefly.
package pglisten

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lib/pq"
)

// Reconnection back-off and liveness probing of the notification connection.
// A dead TCP connection can go unnoticed without traffic, so Run pings it
// (lib/pq's Listener documentation recommends about every 90 seconds).
const (
	minReconnect = 100 * time.Millisecond
	maxReconnect = 10 * time.Second
	pingEvery    = 60 * time.Second
)

// Handler is what Run reports to: the owner of an in-memory copy.
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
	// moment the connection is lost (or Run ends) until it listens again.
	// While false the owner should re-read its copies after a short age.
	Listening func(bool)
	// Fallback completes the warning logged when the connection is lost,
	// e.g. "re-reading policies every 1s".
	Fallback string
	Log      *slog.Logger
}

// Run holds a connection to dsn that listens on channel and reports to h
// until ctx ends. It returns ctx.Err() when ctx ends, or an error if the
// server refused to LISTEN or the connection was closed for good. Call it
// once per copy, in a goroutine; h's functions run on Run's goroutine,
// except Listening(false), which lib/pq's goroutine may call.
func Run(ctx context.Context, dsn, channel string, h Handler) error {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	onEvent := func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected:
			h.Listening(false)
			log.Warn(h.Name+": notification connection lost; "+h.Fallback, "err", err)
		case pq.ListenerEventReconnected:
			log.Info(h.Name + ": notification connection back")
		case pq.ListenerEventConnectionAttemptFailed:
			log.Warn(h.Name+": cannot connect for notifications", "err", err)
		}
	}
	l := pq.NewListener(dsn, minReconnect, maxReconnect, onEvent)
	defer l.Close() //nolint:errcheck // closing; nothing left to report
	// Listen below blocks until a connection is made; ending ctx ends the wait.
	stop := context.AfterFunc(ctx, func() { l.Close() }) //nolint:errcheck
	defer stop()
	if err := l.Listen(channel); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: listen: %w", h.Name, err)
	}
	// Whatever changed before the LISTEN took effect was not notified.
	h.Resync()
	h.Listening(true)
	defer h.Listening(false)
	log.Info(h.Name+": listening for changes", "channel", channel)

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
				return errors.New(h.Name + ": notification connection closed")
			case n == nil:
				// lib/pq sends nil after reconnecting.
				h.Resync()
				h.Listening(true)
			case probe(channel, n.Extra):
			default:
				h.Notify(n.Extra)
			}
		case <-ping.C:
			// A failed ping makes the listener reconnect; its events say so.
			_ = l.Ping()
		}
	}
}
