package tenant

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// StaffQueue reads one page of a support queue across accounts, oldest first:
// the rows of sel, a SELECT whose main table is aliased r and has created_at
// and id columns, that match where, which may use $1 (bound to arg). Support
// staff only.
func StaffQueue[T any](ctx context.Context, db *DB, page Page, sel, where string, arg any, key func(T) (time.Time, string)) (*Connection[T], error) {
	if _, err := RequireStaff(ctx); err != nil {
		return nil, err
	}
	limit, after, afterID, err := TimeKeyset(page)
	if err != nil {
		return nil, err
	}
	var conn *Connection[T]
	err = db.CrossTenant(ctx, ScopeStaff, func(tx *sqlx.Tx) error {
		var rows []T
		if err := tx.SelectContext(ctx, &rows, sel+`
			WHERE (`+where+`)
			  AND ($2 = '' OR (r.created_at, r.id) > ($3, nullif($2, '')::uuid))
			ORDER BY r.created_at, r.id LIMIT $4`, arg, afterID, after, limit+1); err != nil {
			return DBError(err)
		}
		conn = TimePage(rows, limit, afterID != "", key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// StaffQueueItem returns one item of a support queue by ID, read with sel
// (whose rows are aliased r) in the staff scope. To anyone but support staff,
// and for a malformed or unknown ID, it is what's "not found".
func StaffQueueItem[T any](ctx context.Context, db *DB, sel, id, what string) (*T, error) {
	if p := PrincipalFrom(ctx); !p.IsStaff() || !IsUUID(id) {
		return nil, NotFound(what)
	}
	var item T
	err := db.CrossTenant(ctx, ScopeStaff, func(tx *sqlx.Tx) error {
		return NotFoundAs(DBError(tx.GetContext(ctx, &item, sel+` WHERE r.id = $1`, id)), what)
	})
	return Result(&item, err)
}
