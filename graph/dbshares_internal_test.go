package graph

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
)

// The pool's division: of 16 connections the API holds 12, one account's
// requests 6, requests without a login 3 together, one operation 4; an
// account's share is dropped once its last operation is over.
func TestDBSharesDivideThePool(t *testing.T) {
	t.Parallel()
	db := pgtest.OpenStore(t)
	db.X.SetMaxOpenConns(16)
	s := newDBShares(16)
	const alpha, beta = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
	user := func(accountID string) context.Context {
		return tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindUser, AccountID: accountID})
	}

	run := func(ctx context.Context, accountID string, c *testkit.AtOnce, reads int) {
		ctx, leave := s.enter(ctx)
		defer leave()
		var wg sync.WaitGroup
		for range reads {
			wg.Go(func() {
				err := db.InAccount(ctx, accountID, func(tx *sqlx.Tx) error {
					c.Hold(15 * time.Millisecond)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// concurrently runs ops operations of reads reads each at once.
	concurrently := func(ctx context.Context, accountID string, c *testkit.AtOnce, ops, reads int) *sync.WaitGroup {
		var wg sync.WaitGroup
		for range ops {
			wg.Go(func() { run(ctx, accountID, c, reads) })
		}
		return &wg
	}

	var one testkit.AtOnce
	concurrently(user(alpha), alpha, &one, 1, 20).Wait()
	if got := one.Most(); got != DefaultRequestConnections {
		t.Errorf("one operation of 20 reads held %d connections at once, want %d", got, DefaultRequestConnections)
	}

	var a, b testkit.AtOnce
	wa := concurrently(user(alpha), alpha, &a, 6, 10)
	wb := concurrently(user(beta), beta, &b, 6, 10)
	wa.Wait()
	wb.Wait()
	if a.Most() != 6 || b.Most() != 6 {
		t.Errorf("two accounts' six operations each held %d and %d connections at once, want 6 each (half of the API's 12)", a.Most(), b.Most())
	}

	var anon testkit.AtOnce
	concurrently(context.Background(), alpha, &anon, 6, 10).Wait()
	if got := anon.Most(); got != 3 {
		t.Errorf("six operations without a login held %d connections at once, want 3", got)
	}

	// Staff are bounded by the API's share (and their operations' own).
	var all testkit.AtOnce
	staffCtx := tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindStaff})
	ws := concurrently(staffCtx, alpha, &all, 6, 10)
	wa = concurrently(user(alpha), alpha, &all, 6, 10)
	ws.Wait()
	wa.Wait()
	if got := all.Most(); got != 12 {
		t.Errorf("staff and one account held %d connections at once, want 12 (the API's share)", got)
	}
	if s.api.InUse() != 0 || s.anonymous.InUse() != 0 {
		t.Errorf("slots still held after every operation ended: API %d, anonymous %d", s.api.InUse(), s.anonymous.InUse())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.accounts) != 0 {
		t.Errorf("%d accounts' shares kept after their operations ended", len(s.accounts))
	}
}
