package tenant

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// StaffQueue reads one page of a support queue across accounts, oldest first:
// the rows of lq, whose main table is aliased r and has created_at and id
// columns, in the order of sorts (QueueSorts). Support staff only.
func StaffQueue[T any](ctx context.Context, db *DB, sorts *Sorts[T], page Page, lq ListQuery) (*Connection[T], error) {
	if _, err := RequireStaff(ctx); err != nil {
		return nil, err
	}
	ks, err := sorts.NewKeyset(Order{}, page)
	if err != nil {
		return nil, err
	}
	var conn *Connection[T]
	lq.CrossTenant = true
	err = db.CrossTenant(ctx, ScopeStaff, func(tx *sqlx.Tx) (err error) {
		conn, err = ListPage(ctx, tx, ks, lq)
		return err
	})
	return Result(conn, err)
}

// QueueSorts is the one order of a support queue: by r.created_at, oldest
// first, ties by r.id. key gives a row's creation time and ID.
func QueueSorts[T any](list string, key func(T) (time.Time, string)) *Sorts[T] {
	return &Sorts[T]{
		List: list,
		Keys: []SortKey[T]{{Field: "CREATED_AT", Expr: "r.created_at", Type: "timestamptz", Of: func(r T) string {
			t, _ := key(r)
			return TimeKey(t)
		}}},
		Default: Order{Field: "CREATED_AT"},
		ID:      "r.id",
		IDOf: func(r T) string {
			_, id := key(r)
			return id
		},
	}
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
