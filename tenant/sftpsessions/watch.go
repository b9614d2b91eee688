package sftpsessions

import (
	"context"
	"sync/atomic"

	"github.com/skiffhq/skiff/tenant"
)

// Change is what a watcher of an account's sessions hears: a session
// started, changed (bytes or operation, at its node's refresh) or ended.
type Change struct {
	Kind      EventKind
	SessionID string
	// Session is the session as it is now, read under the watcher's
	// principal; nil when it ended.
	Session *Session
}

// WatchBuffer is how many changes a watcher may fall behind by; past it
// the watch ends (the channel closes) rather than hold memory for a client
// that does not read: it subscribes again and lists the sessions anew.
const WatchBuffer = 256

// Watch returns the changes to the account's live sessions on every node,
// from now until ctx ends (or the watcher falls WatchBuffer behind), under
// the same rules as List: owners, administrators and staff hear of every
// session, a user only of their own, anyone else gets NOT_FOUND. It needs
// Events to be listening (skiff serve runs it).
func (s *Service) Watch(ctx context.Context, accountID string) (<-chan *Change, error) {
	p := tenant.PrincipalFrom(ctx)
	ownOnly, err := WatchScope(ctx, accountID)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	raw := make(chan Event, WatchBuffer)
	var overflowed atomic.Bool
	unsubscribe := s.Events.Subscribe(func(ev Event) {
		if ev.AccountID != accountID || ev.Kind == EndRequested || (ownOnly && ev.UserID != p.ID) || overflowed.Load() {
			return
		}
		select {
		case raw <- ev:
		default:
			overflowed.Store(true)
			stop()
		}
	}, nil)
	out := make(chan *Change)
	go func() {
		defer close(out)
		defer unsubscribe()
		defer stop()
		for {
			var ev Event
			select {
			case <-ctx.Done():
				return
			case ev = <-raw:
			}
			c := &Change{Kind: ev.Kind, SessionID: ev.SessionID}
			if ev.Kind != Ended {
				sess, err := s.Get(ctx, ev.SessionID)
				if err != nil {
					// Ended since (its ENDED follows), or a failed read:
					// the next change of the session says more.
					continue
				}
				c.Session = sess
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// WatchScope is what the principal in ctx may hear of accountID's sessions
// (see Watch): ownOnly when only their own; an error when nothing.
func WatchScope(ctx context.Context, accountID string) (ownOnly bool, err error) {
	p := tenant.PrincipalFrom(ctx)
	switch {
	case p == nil:
		return false, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	case !p.IsStaff() && !p.InAccount(accountID):
		return false, tenant.NotFound("account")
	}
	return !p.IsStaff() && !p.IsAdmin(accountID), nil
}

// MayStillWatch checks that the principal in ctx may still hear what a
// watch of accountID that began with ownOnly hears: an administrator who
// became a plain user may not (FORBIDDEN); they watch again, for their own.
func MayStillWatch(ctx context.Context, accountID string, ownOnly bool) error {
	nowOwnOnly, err := WatchScope(ctx, accountID)
	if err == nil && nowOwnOnly && !ownOnly {
		return tenant.Errorf(tenant.EForbidden, "you may no longer see every SFTP session of the account; subscribe again for your own")
	}
	return err
}
