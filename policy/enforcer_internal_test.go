package policy

import (
	"context"
	"slices"
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
