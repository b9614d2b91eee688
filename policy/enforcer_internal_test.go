package policy

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
)

// Accounts nobody asks about are dropped from memory, and come back on use.
func TestIdleAccountsAreDropped(t *testing.T) {
	t.Parallel()
	db, err := tenant.Open(context.Background(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e, err := New(db, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const (
		idle = "11111111-1111-4111-8111-111111111111"
		busy = "22222222-2222-4222-8222-222222222222"
		user = "33333333-3333-4333-8333-333333333333"
	)
	ask := func(account string) {
		t.Helper()
		if ok, err := e.May(context.Background(), user, account, AccountObject, string(SFTPMyFiles)); ok || err != nil {
			t.Fatalf("May on an empty account = %v, %v", ok, err)
		}
	}
	ask(idle)
	ask(busy)
	now = now.Add(idleAfter / 2)
	ask(busy)
	now = now.Add(idleAfter/2 + sweepEvery)
	ask(busy)
	if got := e.loadedAccounts(); !slices.Equal(got, []string{busy}) {
		t.Errorf("accounts in memory = %v, want only %s", got, busy)
	}
}

// A folder's rights come from a shared table, in the order of Rights, without
// an allocation per folder; appending to one leaves the table alone.
func TestGrantsInSharesLists(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in parallel tests.
	g := &grants{
		folders:    map[string]rightSet{"a": bitOf(Download) | bitOf(List), "b": bitOf(Share)},
		everywhere: bitOf(Manage),
	}
	if got := g.in("a", false); !slices.Equal(got, []Right{List, Download}) {
		t.Errorf("in(a) = %v", got)
	}
	if got := g.in("b", true); !slices.Equal(got, []Right{Share, Manage}) {
		t.Errorf("in(b, live) = %v", got)
	}
	if got := g.in("c", false); got != nil {
		t.Errorf("in(c) = %v, want none", got)
	}
	_ = append(g.in("a", false), Manage)
	if got := g.in("a", false); !slices.Equal(got, []Right{List, Download}) {
		t.Errorf("after an append, in(a) = %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { g.in("a", true) }); n != 0 {
		t.Errorf("in allocates %v times", n)
	}
}

// A burst of changes costs one read of the account, however many decisions
// then ask at once: invalidations only mark it stale, and decisions waiting
// for a read use it.
func TestBurstOfChangesReadsOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	_, q := rawDB(t, url)
	// A user the policy knows: a decision about an unknown one may read again.
	account := q(`INSERT INTO accounts (name) VALUES ('Burst') RETURNING id`)
	user := q(`INSERT INTO users (account_id, email, name, role) VALUES ($1, 'b@burst.example', 'B', 'USER') RETURNING id`, account)
	db, err := tenant.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := New(db, Options{ListeningMaxAge: time.Hour, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ask := func() {
		if _, err := e.May(context.Background(), user, account, AccountObject, string(SFTPMyFiles)); err != nil {
			t.Error(err)
		}
	}
	ask()
	for round := range 3 {
		before := e.loads.Load()
		for range 100 {
			e.Invalidate(account)
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(ask)
		}
		wg.Wait()
		if n := e.loads.Load() - before; n != 1 {
			t.Errorf("round %d: 100 changes and 20 decisions read the account %d times, want once", round, n)
		}
	}
}
