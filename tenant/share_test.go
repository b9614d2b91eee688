package tenant_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
)

// many runs n reads in accountID at once and fails t if any fails or they
// have not all ended within a minute (a deadlock).
func many(t *testing.T, ctx context.Context, db *tenant.DB, accountID string, n int, c *testkit.AtOnce) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			errs <- db.InAccount(ctx, accountID, func(tx *sqlx.Tx) error {
				var one int
				if err := tx.GetContext(ctx, &one, `SELECT 1`); err != nil {
					return err
				}
				c.Hold(20 * time.Millisecond)
				return nil
			})
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the reads had not ended after a minute: they wait on each other")
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Transactions begun under a share hold at most its size of connections at
// once; the others wait their turn and all succeed.
func TestShareBoundsTransactionsAtOnce(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	var free testkit.AtOnce
	many(t, context.Background(), e.db, e.alpha, 8, &free)
	if free.Most() < 3 {
		t.Fatalf("without a share, at most %d of 8 reads ran at once: the test cannot tell a share's bound", free.Most())
	}
	share := tenant.NewShare(2)
	var c testkit.AtOnce
	many(t, tenant.WithShares(context.Background(), share), e.db, e.alpha, 8, &c)
	if got := c.Most(); got != 2 {
		t.Fatalf("under a share of 2, %d reads ran at once", got)
	}
	if share.InUse() != 0 {
		t.Fatalf("%d slots still held after the reads ended", share.InUse())
	}
}

// A read-only request's shared transaction holds one of its share's slots;
// concurrent reads that find it busy take the others, or wait for it.
func TestShareCountsTheSharedTransaction(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	share := tenant.NewShare(2)
	ctx, end := e.db.ReadOnly(tenant.WithShares(context.Background(), share), e.alpha)
	var c testkit.AtOnce
	many(t, ctx, e.db, e.alpha, 10, &c)
	if got := c.Most(); got != 2 {
		t.Fatalf("a request with a share of 2 ran %d reads at once", got)
	}
	if share.InUse() != 1 {
		t.Fatalf("the request holds %d slots between reads, want 1 (its shared transaction)", share.InUse())
	}
	end()
	if share.InUse() != 0 {
		t.Fatalf("%d slots still held after the request ended", share.InUse())
	}
}

// Shares nest: each request's own share bounds it, and the share the
// requests have in common bounds them all.
func TestSharesNest(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	common := tenant.NewShare(3)
	var c testkit.AtOnce
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			ctx := tenant.WithShares(context.Background(), tenant.NewShare(2), common)
			many(t, ctx, e.db, e.alpha, 4, &c)
		})
	}
	wg.Wait()
	if got := c.Most(); got != 3 {
		t.Fatalf("three requests of share 2 under a common share of 3 ran %d reads at once", got)
	}
}

// A call waiting for a slot gives up when its context ends, with an error
// that says so.
func TestShareWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	ctx := tenant.WithShares(context.Background(), tenant.NewShare(1))
	inside, leave := make(chan struct{}), make(chan struct{})
	go func() {
		_ = e.db.InAccount(ctx, e.alpha, func(*sqlx.Tx) error { close(inside); <-leave; return nil })
	}()
	<-inside
	defer close(leave)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := e.db.InAccount(short, e.alpha, func(*sqlx.Tx) error {
		t.Error("the callback ran while the share's one slot was held")
		return nil
	})
	if err == nil || !tenant.Canceled(err) {
		t.Fatalf("waiting past the context's end: %v, want an error that reports the context ended", err)
	}
}
