package activity

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/tenant"
)

// LiveChannel is the PostgreSQL notification channel of recorded activity:
// every batch a recorder writes notifies it at commit, once per account and
// node in the batch (migration 00130).
const LiveChannel = "skiff_sftp_activity"

// recorded is one notification: the events a node's batch wrote for an
// account, IDs first to last (the batch's events of that account and node;
// other accounts' and nodes' rows may have IDs in between).
type recorded struct {
	accountID   string
	first, last int64
	node        string
}

// parseRecorded reads a notification's payload: "<account> <first> <last> <node>".
func parseRecorded(payload string) (recorded, bool) {
	f := strings.SplitN(payload, " ", 4)
	if len(f) != 4 || !tenant.IsUUID(f[0]) {
		return recorded{}, false
	}
	first, err1 := strconv.ParseInt(f[1], 10, 64)
	last, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || first > last {
		return recorded{}, false
	}
	return recorded{accountID: f[0], first: first, last: last, node: f[3]}, true
}

// Live hands this node's watchers (Service.Watch) the notifications of
// their account's recorded activity, from every node. One database
// connection listens for them all (Listen). The zero value is ready.
type Live struct {
	mu       sync.Mutex
	next     int
	watchers map[string]map[int]func(recorded) // by account
}

// subscribe calls fn with every notification of accountID from now on, on
// the listening goroutine (fn must not block); cancel stops the calls.
func (l *Live) subscribe(accountID string, fn func(recorded)) (cancel func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watchers == nil {
		l.watchers = map[string]map[int]func(recorded){}
	}
	if l.watchers[accountID] == nil {
		l.watchers[accountID] = map[int]func(recorded){}
	}
	id := l.next
	l.next++
	l.watchers[accountID][id] = fn
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.watchers[accountID], id)
		if len(l.watchers[accountID]) == 0 {
			delete(l.watchers, accountID)
		}
	}
}

func (l *Live) publish(r recorded) {
	l.mu.Lock()
	fns := make([]func(recorded), 0, len(l.watchers[r.accountID]))
	for _, fn := range l.watchers[r.accountID] {
		fns = append(fns, fn)
	}
	l.mu.Unlock()
	for _, fn := range fns {
		fn(r)
	}
}

// Listen hears LiveChannel at dsn and hands each notification to the
// watchers of its account until ctx ends. While the connection is down,
// watchers hear nothing (they list the log to catch up).
func (l *Live) Listen(ctx context.Context, dsn string, log *slog.Logger) error {
	return l.ListenOn(ctx, pglisten.Start(ctx, dsn, log), log)
}

// ListenOn is Listen on the node's shared notification connection nl.
func (l *Live) ListenOn(ctx context.Context, nl *pglisten.Listener, log *slog.Logger) error {
	return nl.Listen(ctx, LiveChannel, pglisten.Handler{
		Name: "sftp activity",
		Notify: func(payload string) {
			if r, ok := parseRecorded(payload); ok {
				l.publish(r)
			}
		},
		Resync:    func() {},
		Listening: func(bool) {},
		Fallback:  "sftpActivity subscriptions hear nothing until it is back",
		Log:       log,
	})
}

// WatchBuffer is how many batches a watcher may fall behind by; past it the
// watch ends (its channel closes) rather than hold memory for a client that
// does not read: it subscribes again and lists what it missed.
const WatchBuffer = 256

// WatchFilter is the filter a watch of accountID's activity by the
// principal applies: f, narrowed to the principal's own events when they
// may not read the whole account's. It refuses a time range (a watch has
// none), and whoever may not read what the filter asks for (RequireReader):
// so owners, administrators and staff may watch the account or any user,
// a user only themselves.
func WatchFilter(ctx context.Context, accountID string, f Filter) (Filter, error) {
	if f.From != nil {
		return f, tenant.Invalid("from", "a subscription has no time range: list past events with sftpActivity")
	}
	if f.To != nil {
		return f, tenant.Invalid("to", "a subscription has no time range: list past events with sftpActivity")
	}
	if err := f.check(); err != nil {
		return f, err
	}
	if p := tenant.PrincipalFrom(ctx); f.UserID == "" && p.InAccount(accountID) && !p.IsAdmin(accountID) {
		f.UserID = p.ID
	}
	return f, RequireReader(ctx, accountID, f.UserID)
}

// Watch returns the account's activity events matching f (see WatchFilter)
// as every node's recorder writes them (within about a second of the
// operation, in batches), oldest first, until ctx ends or the watcher falls
// WatchBuffer batches behind. The events are read under the watcher's
// principal, with the account's row-level security. It needs Live to be
// listening (skiff serve runs it).
func (s *Service) Watch(ctx context.Context, accountID string, f Filter) (<-chan *Event, error) {
	f, err := WatchFilter(ctx, accountID, f)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	raw := make(chan recorded, WatchBuffer)
	var overflowed atomic.Bool
	unsubscribe := s.Live.subscribe(accountID, func(r recorded) {
		if overflowed.Load() {
			return
		}
		select {
		case raw <- r:
		default:
			overflowed.Store(true)
			stop()
		}
	})
	out := make(chan *Event)
	go func() {
		defer close(out)
		defer unsubscribe()
		defer stop()
		for {
			var r recorded
			select {
			case <-ctx.Done():
				return
			case r = <-raw:
			}
			var rows []*Event
			err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
				query, args, ok := liveQuery(accountID, f, r)
				if !ok {
					return nil
				}
				return tenant.DBError(q.SelectContext(ctx, &rows, query, args...))
			})
			if err != nil {
				// The watch ends rather than skip events: the client
				// subscribes again and lists what it missed.
				return
			}
			for _, e := range rows {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// liveQuery reads the events of a notification that match f, oldest first,
// through the primary key's range.
func liveQuery(accountID string, f Filter, r recorded) (query string, args []any, ok bool) {
	w, ok := filterWhere(accountID, f)
	if !ok {
		return "", nil, false
	}
	w.add("id BETWEEN " + w.arg(r.first) + " AND " + w.arg(r.last))
	w.add("node = " + w.arg(r.node))
	return `SELECT ` + eventColumns + ` FROM sftp_activity WHERE ` + strings.Join(w.conds, " AND ") +
		` ORDER BY id`, w.args, true
}
