package domain_test

import (
	"testing"

	"github.com/skiffhq/skiff/internal/pgtest"
)

// TestMain gives tests that call pgtest.NewDB a throwaway PostgreSQL server,
// stopped when they are done.
func TestMain(m *testing.M) { pgtest.Main(m) }
