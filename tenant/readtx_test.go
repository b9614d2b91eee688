package tenant_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
)

type readTxEnv struct {
	db           *tenant.DB
	alpha, beta  string // account IDs
	alphaOwnerID string
}

func newReadTxEnv(t *testing.T) readTxEnv {
	t.Helper()
	ctx := context.Background()
	db := pgtest.OpenStore(t)
	svc := domain.New(db)
	sys := tenant.SystemContext(ctx)
	a, owner, err := svc.Accounts.CreateAccount(sys, account.CreateAccountInput{Name: "Alpha", OwnerEmail: "o@alpha.example", OwnerName: "A"})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := svc.Accounts.CreateAccount(sys, account.CreateAccountInput{Name: "Beta", OwnerEmail: "o@beta.example", OwnerName: "B"})
	if err != nil {
		t.Fatal(err)
	}
	return readTxEnv{db: db, alpha: a.ID, beta: b.ID, alphaOwnerID: owner.ID}
}

// startedRequest is a read-only request in Alpha whose transaction has begun.
func (e readTxEnv) startedRequest(t *testing.T) (context.Context, func()) {
	t.Helper()
	ctx, end := e.db.ReadOnly(context.Background(), e.alpha)
	if _, err := countUsers(ctx, e.db, e.alpha); err != nil {
		end()
		t.Fatal(err)
	}
	return ctx, end
}

func countUsers(ctx context.Context, db *tenant.DB, accountID string) (int, error) {
	var n int
	err := db.InAccount(ctx, accountID, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &n, `SELECT count(*) FROM users`) // unfiltered: RLS alone decides
	})
	return n, err
}

// openTransactions counts the database's sessions that are inside a
// transaction but idle: a request's transaction left behind.
func openTransactions(t *testing.T, db *tenant.DB) int {
	t.Helper()
	var n int
	if err := db.X.Get(&n, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`); err != nil {
		t.Fatal(err)
	}
	return n
}

// The reads of one request share one transaction, which still sees only its
// account; another account's reads in the same request get their own.
func TestReadOnlySharesOneTransactionInOneAccount(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	ctx, end := e.db.ReadOnly(context.Background(), e.alpha)
	defer end()
	before := e.db.Transactions()
	for range 5 {
		n, err := countUsers(ctx, e.db, e.alpha)
		if err != nil || n != 1 {
			t.Fatalf("Alpha sees %d users (%v), want its 1", n, err)
		}
	}
	if got := e.db.Transactions() - before; got != 1 {
		t.Fatalf("5 reads in one request took %d transactions, want 1", got)
	}
	err := e.db.InAccount(ctx, e.alpha, func(tx *sqlx.Tx) error {
		var foreign int
		if err := tx.GetContext(ctx, &foreign, `SELECT count(*) FROM users WHERE account_id = $1`, e.beta); err != nil {
			return err
		}
		if foreign != 0 {
			t.Errorf("the shared transaction sees %d of Beta's users", foreign)
		}
		var readOnly string
		if err := tx.GetContext(ctx, &readOnly, `SHOW transaction_read_only`); err != nil {
			return err
		}
		if readOnly != "on" {
			t.Errorf("the shared transaction is not read-only")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := countUsers(ctx, e.db, e.beta); err != nil || n != 1 {
		t.Fatalf("Beta's read in Alpha's request sees %d users (%v), want Beta's 1", n, err)
	}
	if got := e.db.Transactions() - before; got != 2 {
		t.Fatalf("reads of two accounts took %d transactions, want 2 (one shared, one for Beta)", got)
	}
}

// A statement that fails aborts a PostgreSQL transaction; the calls after it
// must not inherit the failure, and a panic must not leave it open either.
func TestReadOnlyFailureDoesNotPoisonLaterReads(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	ctx, end := e.startedRequest(t)
	defer end()
	err := e.db.InAccount(ctx, e.alpha, func(tx *sqlx.Tx) error {
		var n int
		return tx.GetContext(ctx, &n, `SELECT 1 / (count(*) - count(*))::int FROM users`)
	})
	if err == nil {
		t.Fatal("division by zero succeeded")
	}
	if n, err := countUsers(ctx, e.db, e.alpha); err != nil || n != 1 {
		t.Fatalf("after a failed statement a read sees %d users (%v), want 1", n, err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = e.db.InAccount(ctx, e.alpha, func(tx *sqlx.Tx) error { panic("boom") })
	}()
	if n, err := countUsers(ctx, e.db, e.alpha); err != nil || n != 1 {
		t.Fatalf("after a panic a read sees %d users (%v), want 1", n, err)
	}
	end()
	if n := openTransactions(t, e.db); n != 0 {
		t.Fatalf("%d transactions left open after the request", n)
	}
}

// A call that writes during a read-only request still writes, in a
// transaction of its own, and its change is kept.
func TestReadOnlyRequestStillWrites(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	ctx, end := e.startedRequest(t)
	defer end()
	err := e.db.InAccount(ctx, e.alpha, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE users SET name = 'Renamed' WHERE id = $1`, e.alphaOwnerID)
		return err
	})
	if err != nil {
		t.Fatalf("a write during a read-only request failed: %v", err)
	}
	end()
	var name string
	if err := e.db.InAccount(context.Background(), e.alpha, func(tx *sqlx.Tx) error {
		return tx.GetContext(context.Background(), &name, `SELECT name FROM users WHERE id = $1`, e.alphaOwnerID)
	}); err != nil {
		t.Fatal(err)
	}
	if name != "Renamed" {
		t.Fatalf("the write was lost: name is %q", name)
	}
}

// Concurrent loaders of one request never use the connection at once (run
// with -race); each gets the right answer.
func TestReadOnlyConcurrentReads(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	ctx, end := e.db.ReadOnly(context.Background(), e.alpha)
	defer end()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Go(func() {
			n, err := countUsers(ctx, e.db, e.alpha)
			if err == nil && n != 1 {
				err = errors.New("wrong count")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// The transaction ends with the request: when its context ends, even if
// nobody calls end, the connection does not stay in a transaction.
func TestReadOnlyEndsWithTheRequest(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	reqCtx, cancel := context.WithCancel(context.Background())
	ctx, _ := e.db.ReadOnly(reqCtx, e.alpha)
	if _, err := countUsers(ctx, e.db, e.alpha); err != nil {
		t.Fatal(err)
	}
	if n := openTransactions(t, e.db); n != 1 {
		t.Fatalf("%d open transactions during the request, want 1", n)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for openTransactions(t, e.db) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request's transaction outlived the request")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The account a transaction is scoped to is quoted, not pasted: an account
// "ID" that tries to end the statement scopes to nothing and runs nothing.
func TestScopeValuesAreQuoted(t *testing.T) {
	t.Parallel()
	e := newReadTxEnv(t)
	ctx := context.Background()
	for _, id := range []string{`x', true); SET LOCAL role TO DEFAULT; --`, `\'; SELECT 1; --`} {
		err := e.db.InAccount(ctx, id, func(tx *sqlx.Tx) error {
			var n int
			return tx.GetContext(ctx, &n, `SELECT count(*) FROM users`)
		})
		if err == nil {
			t.Errorf("a transaction scoped to %q read users", id)
		}
	}
	if n, err := countUsers(ctx, e.db, e.alpha); err != nil || n != 1 {
		t.Fatalf("Alpha after the attempts: %d users (%v)", n, err)
	}
}
