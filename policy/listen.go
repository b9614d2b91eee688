package policy

import (
	"context"

	"github.com/skiffhq/skiff/internal/pglisten"
)

// Listen keeps the enforcer current with changes committed on any node: it
// holds a connection to dsn (the database New reads) that listens on Channel
// and invalidates each account named by a notification, until ctx ends.
//
// While the connection is down the enforcer falls back to Options.MaxAge;
// when it comes back every account is invalidated, since notifications sent
// meanwhile are lost. Listen returns ctx.Err() when ctx ends, or an error if
// the server refused to LISTEN. Call it (or ListenOn) once per Enforcer, in
// a goroutine.
func (e *Enforcer) Listen(ctx context.Context, dsn string) error {
	return e.ListenOn(ctx, pglisten.Start(ctx, dsn, e.log))
}

// ListenOn is Listen on the node's shared notification connection l.
func (e *Enforcer) ListenOn(ctx context.Context, l *pglisten.Listener) error {
	return l.Listen(ctx, Channel, pglisten.Handler{
		Name:      "policy",
		Notify:    e.Invalidate,
		Resync:    e.InvalidateAll,
		Listening: e.listening.Store,
		Fallback:  "re-reading policies every " + e.opts.MaxAge.String(),
		Log:       e.log,
	})
}
