// Package tenanttest opens Skiff's store on a fresh database for a test:
// internal/pgtest makes the database, tenant.Open migrates it. It lives
// apart from pgtest because tenant's own tests use pgtest, and pgtest
// importing tenant would be a cycle.
package tenanttest

import (
	"context"
	"testing"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
)

// Open returns the store of a new, migrated database, closed when the test
// ends.
func Open(t testing.TB) *tenant.DB {
	t.Helper()
	db, err := tenant.Open(context.Background(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
