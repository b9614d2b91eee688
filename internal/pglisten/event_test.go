package pglisten

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/testkit"
)

// The connection's troubles are logged while the listener runs, and not
// once it was told to stop: a server stopped with its database saw its
// connection attempt in progress cut by the database's shutdown and warned
// "cannot connect for notifications", after a failed start or a clean stop.
func TestEventsAfterTheStopAreNotLogged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stopped bool
	}{{"running", false}, {"stopped", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testkit.SyncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sub := &subscription{h: Handler{Name: "owner", Log: log, Listening: func(bool) {}}}
			sub.active.Store(true)
			l := &Listener{log: log, ctx: ctx, subs: map[string]*subscription{"ch": sub}, leaving: map[string]chan struct{}{}}
			if tc.stopped {
				cancel()
			}
			l.event(pq.ListenerEventConnectionAttemptFailed, io.EOF)
			l.event(pq.ListenerEventDisconnected, io.EOF)
			got := logs.String()
			for _, want := range []string{"cannot connect for notifications", "notification connection lost"} {
				if logged := strings.Contains(got, want); logged == tc.stopped {
					t.Errorf("%q logged: %v, want %v; log:\n%s", want, logged, !tc.stopped, got)
				}
			}
		})
	}
}
