package pgtest

import (
	"testing"

	"github.com/skiffhq/skiff/internal/sqlcount"
	"github.com/skiffhq/skiff/tenant"
)

// OpenCountingStore is OpenStore on a pool that counts the statements it
// sends: every query and exec, each execution of a prepared statement too,
// but not BEGIN, COMMIT or ROLLBACK (tenant.DB.Transactions counts
// transactions). Tests use it to check that a page costs the same number
// of statements whatever its size.
func OpenCountingStore(t testing.TB) (*tenant.DB, *sqlcount.Counter) {
	t.Helper()
	c := new(sqlcount.Counter)
	x, err := c.Open(NewDB(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return tenant.NewDB(x), c
}
