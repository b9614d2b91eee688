package pgtest_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNewDBIsMigratedAndPrivate(t *testing.T) {
	t.Parallel()
	a, b := pgtest.Open(t), pgtest.Open(t)
	if _, err := a.Exec(`INSERT INTO accounts (name) VALUES ('Acme')`); err != nil {
		t.Fatalf("the schema is not there: %v", err)
	}
	var n int
	if err := b.Get(&n, `SELECT count(*) FROM accounts`); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a row written in one test database shows in another: %d rows", n)
	}
}

func TestDatabaseIsDroppedWhenTestEnds(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("user", func(t *testing.T) {
		db := pgtest.Open(t)
		if err := db.Get(&name, `SELECT current_database()`); err != nil {
			t.Fatal(err)
		}
	})
	var exists bool
	if err := pgtest.Open(t).Get(&exists, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s outlived its test", name)
	}
}

func TestManyTestsAtOnce(t *testing.T) {
	t.Parallel()
	// Parallel tests each get a database of their own, even while the first
	// ones are still waiting for the server and the template.
	var wg sync.WaitGroup
	names := make(chan string, 8)
	for range cap(names) {
		wg.Go(func() {
			var name string
			if err := pgtest.Open(t).Get(&name, `SELECT current_database()`); err != nil {
				t.Error(err)
			}
			names <- name
		})
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for name := range names {
		if seen[name] {
			t.Errorf("database %s handed out twice", name)
		}
		seen[name] = true
	}
}

// The posture row-level security depends on: every scoped transaction runs
// as skiff_app, which cannot bypass RLS and owns no table (owners could turn
// RLS off).
func TestScopedTransactionsRunAsAppRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.OpenStore(t)

	var acme, other string
	if err := db.X.Get(&acme, `INSERT INTO accounts (name) VALUES ('Acme') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	if err := db.X.Get(&other, `INSERT INTO accounts (name) VALUES ('Other') RETURNING id`); err != nil {
		t.Fatal(err)
	}

	err := db.InAccount(ctx, acme, func(tx *sqlx.Tx) error {
		var role struct {
			User        string `db:"current_user"`
			Super       bool   `db:"rolsuper"`
			BypassRLS   bool   `db:"rolbypassrls"`
			OwnedTables int    `db:"owned"`
		}
		if err := tx.Get(&role, `
			SELECT current_user, r.rolsuper, r.rolbypassrls,
			       (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')) AS owned
			FROM pg_roles r WHERE r.rolname = current_user`); err != nil {
			return err
		}
		if role.User != tenant.AppRole || role.Super || role.BypassRLS || role.OwnedTables != 0 {
			t.Errorf("transaction runs as %+v, want %s: no superuser, no BYPASSRLS, owning nothing", role, tenant.AppRole)
		}
		var ids []string
		if err := tx.Select(&ids, `SELECT id FROM accounts`); err != nil {
			return err
		}
		if len(ids) != 1 || ids[0] != acme {
			t.Errorf("account %s sees accounts %v, want only itself", acme, ids)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Without a scope, nothing is visible at all.
	err = db.CrossTenant(ctx, "", func(tx *sqlx.Tx) error {
		var n int
		if err := tx.Get(&n, `SELECT count(*) FROM accounts`); err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("a transaction with neither account nor scope sees %d accounts", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
