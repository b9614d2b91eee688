package tenant

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// AuditEventRow is one recorded change in an account's audit trail.
type AuditEventRow struct {
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

// auditEventScan is an AuditEventRow as scanned: a NULL jsonb cannot be
// scanned into a json.RawMessage, only into a []byte.
type auditEventScan struct {
	AuditEventRow
	Before []byte `db:"before"`
	After  []byte `db:"after"`
}

// AuditFilter narrows an audit trail listing; zero fields match everything.
type AuditFilter struct {
	// Kinds are exact kinds ("user.created") or families ending in ".*"
	// ("sftp_module.*"); an event matching any of them is listed.
	Kinds []string
	// UserID lists the events a user made or that were made to them.
	UserID string
	// Since and Until bound the time of the event: Since <= at < Until.
	Since, Until *time.Time
}

// maxAuditKinds bounds AuditFilter.Kinds; the product has a few dozen kinds.
const maxAuditKinds = 50

// AuditEvents lists an account's audit trail, newest first, in keyset pages.
// Owners and administrators of the account and support staff may see it;
// another user of the account is FORBIDDEN; anyone else gets "account not found".
func (s *Service) AuditEvents(ctx context.Context, accountID string, f AuditFilter, page Page) (*Connection[*AuditEventRow], error) {
	if err := requireAccountAdmin(ctx, accountID, "the audit trail"); err != nil {
		return nil, err
	}
	limit, after, afterID, err := timeKeyset(page)
	if err != nil {
		return nil, err
	}
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		return nil, Invalid("until", "until must be later than since")
	}
	if len(f.Kinds) > maxAuditKinds {
		return nil, Invalid("kinds", "at most %d kinds can be asked for at once", maxAuditKinds)
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
	if f.UserID != "" && !isUUID(f.UserID) {
		// No user has this ID, so no event is theirs.
		return &Connection[*AuditEventRow]{HasPrevious: afterID != ""}, nil
	}
	var where []string
	args := []any{accountID}
	arg := func(v any) string { args = append(args, v); return "$" + itoa(len(args)) }
	if len(f.Kinds) > 0 {
		where = append(where, "(kind = ANY("+arg(stringArray(exact))+"::text[]) OR kind LIKE ANY("+arg(stringArray(prefixes))+"::text[]))")
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
	if afterID != "" {
		where = append(where, "(at, id) < ("+arg(after)+", "+arg(afterID)+"::uuid)")
	}
	query := `SELECT id, account_id, at, actor_kind, actor_id, actor_name, kind, target_kind, target_id, before, after
		FROM audit_events WHERE account_id = $1`
	for _, w := range where {
		query += " AND " + w
	}
	query += " ORDER BY at DESC, id DESC LIMIT " + arg(limit+1)
	var conn *Connection[*AuditEventRow]
	err = s.inAccount(ctx, accountID, func(q Queryer) error {
		// Staff may name any account: an unknown one is not found, not an empty trail.
		var exists bool
		if err := q.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)`, accountID); err != nil {
			return dbError(err)
		}
		if !exists {
			return NotFound("account")
		}
		var scanned []auditEventScan
		if err := q.SelectContext(ctx, &scanned, query, args...); err != nil {
			return dbError(err)
		}
		rows := make([]*AuditEventRow, len(scanned))
		for i := range scanned {
			r := &scanned[i].AuditEventRow
			r.Before, r.After = scanned[i].Before, scanned[i].After
			rows[i] = r
		}
		conn = timePage(rows, limit, afterID != "", func(r *AuditEventRow) (time.Time, string) { return r.At, r.ID })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}
