package domain_test

import (
	"testing"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
)

// TestMain gives tests that call pgtest.NewDB a throwaway PostgreSQL server,
// stopped when they are done.
func TestMain(m *testing.M) {
	tenant.UseCheapPasswordHashes() // what the tests check does not depend on the cost
	pgtest.Main(m)
}
