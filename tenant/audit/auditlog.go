package audit

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/skiffhq/skiff/tenant"
)

// EventRow is one recorded change in an account's audit trail.
type EventRow struct {
	ID         string          `db:"id"`
	AccountID  string          `db:"account_id"`
	At         time.Time       `db:"at"`
	ActorKind  string          `db:"actor_kind"` // USER, STAFF or SYSTEM
	ActorID    *string         `db:"actor_id"`   // the user or staff member; nil for SYSTEM
	ActorName  string          `db:"actor_name"` // as they were named at the time
	Kind       string          `db:"kind"`       // e.g. "user.created", "sftp_module.activated"
	TargetKind string          `db:"target_kind"`
	TargetID   *string         `db:"target_id"`
	Before     json.RawMessage `db:"-"` // nil when there was no "before"
	After      json.RawMessage `db:"-"`
}

// eventScan is an EventRow as scanned: a NULL jsonb cannot be
// scanned into a json.RawMessage, only into a []byte.
type eventScan struct {
	EventRow
	Before []byte `db:"before"`
	After  []byte `db:"after"`
}

// Filter narrows an audit trail listing; zero fields match everything.
type Filter struct {
	// Kinds are exact kinds ("user.created") or families ending in ".*"
	// ("sftp_module.*"); an event matching any of them is listed.
	Kinds []string
	// UserID lists the events a user made or that were made to them.
	UserID string
	// Since and Until bound the time of the event: Since <= at < Until.
	Since, Until *time.Time
}

// eventColumns are an EventRow's columns, as eventScan reads them.
const eventColumns = `id, account_id, at, actor_kind, actor_id, actor_name, kind, target_kind, target_id, before, after`

// maxKinds bounds Filter.Kinds; the product has a few dozen kinds.
const maxKinds = 50

// eventSorts are the orders of Events: AT, newest first by default, ties by ID.
var eventSorts = &tenant.Sorts[*eventScan]{
	List:    "auditEvents",
	Keys:    []tenant.SortKey[*eventScan]{{Field: "AT", Expr: "at", Type: "timestamptz", Of: func(e *eventScan) string { return tenant.TimeKey(e.At) }}},
	Default: tenant.Order{Field: "AT", Desc: true},
	ID:      "id",
	IDOf:    func(e *eventScan) string { return e.ID },
}

// Events lists an account's audit trail in keyset pages, newest first unless
// order says otherwise.
// Owners and administrators of the account and support staff may see it;
// another user of the account is FORBIDDEN; anyone else gets "account not found".
func (s *Service) Events(ctx context.Context, accountID string, f Filter, order tenant.Order, page tenant.Page) (*tenant.Connection[*EventRow], error) {
	if err := tenant.RequireAccountAdmin(ctx, accountID, "the audit trail"); err != nil {
		return nil, err
	}
	ks, err := eventSorts.NewKeyset(order, page)
	if err != nil {
		return nil, err
	}
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		return nil, tenant.Invalid("until", "until must be later than since")
	}
	if len(f.Kinds) > maxKinds {
		return nil, tenant.Invalid("kinds", "at most %d kinds can be asked for at once", maxKinds)
	}
	var exact, prefixes []string
	for _, k := range f.Kinds {
		k = strings.TrimSpace(k)
		if family, ok := strings.CutSuffix(k, ".*"); ok && family != "" {
			prefixes = append(prefixes, strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(family)+".%")
		} else {
			exact = append(exact, k)
		}
	}
	if f.UserID != "" && !tenant.IsUUID(f.UserID) {
		// No user has this ID, so no event is theirs.
		return &tenant.Connection[*EventRow]{}, nil
	}
	var where []string
	args := []any{accountID}
	arg := func(v any) string { args = append(args, v); return "$" + tenant.Itoa(len(args)) }
	if len(f.Kinds) > 0 {
		where = append(where, "(kind = ANY("+arg(tenant.StringArray(exact))+"::text[]) OR kind LIKE ANY("+arg(tenant.StringArray(prefixes))+"::text[]))")
	}
	if f.UserID != "" {
		u := arg(f.UserID)
		where = append(where, "(actor_id = "+u+"::uuid OR (target_kind = 'User' AND target_id = "+u+"::uuid))")
	}
	if f.Since != nil {
		where = append(where, "at >= "+arg(*f.Since))
	}
	if f.Until != nil {
		where = append(where, "at < "+arg(*f.Until))
	}
	lq := tenant.ListQuery{Select: `SELECT ` + eventColumns, From: `FROM audit_events WHERE account_id = $1`}
	for _, w := range where {
		lq.From += " AND " + w
	}
	lq.Args = args
	var conn *tenant.Connection[*EventRow]
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		// Staff may name any account: an unknown one is not found, not an empty trail.
		var exists bool
		if err := q.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)`, accountID); err != nil {
			return tenant.DBError(err)
		}
		if !exists {
			return tenant.NotFound("account")
		}
		scanned, err := tenant.ListPage(ctx, q, ks, lq)
		if err != nil {
			return err
		}
		conn = tenant.MapConnection(scanned, func(e *eventScan) *EventRow {
			r := &e.EventRow
			r.Before, r.After = e.Before, e.After
			return r
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// Event returns one event of an audit trail by ID, to those who may see the
// trail (see Events); to anyone else it does not exist.
func (s *Service) Event(ctx context.Context, id string) (*EventRow, error) {
	var ev eventScan
	err := s.ReadAdminRecord(ctx, id, "audit event", func(q tenant.Queryer) error {
		return tenant.DBError(q.GetContext(ctx, &ev, `SELECT `+eventColumns+` FROM audit_events WHERE id = $1`, id))
	})
	if err != nil {
		return nil, err
	}
	ev.EventRow.Before, ev.EventRow.After = ev.Before, ev.After
	return &ev.EventRow, nil
}
