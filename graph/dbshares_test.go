package graph_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/graph"
)

// aliased is a query of n aliases of the root account field: each reads in
// a transaction of its own when the request's shared one is busy.
func aliased(n int) string {
	var q strings.Builder
	q.WriteString("{")
	for i := range n {
		fmt.Fprintf(&q, " a%d: account { id name }", i)
	}
	q.WriteString(" }")
	return q.String()
}

// peakInUse samples the pool's connections in use until stop is called,
// which returns the most seen.
func peakInUse(e *env) (stop func() int32) {
	var peak atomic.Int32
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if n := int32(e.svc.DB.X.Stats().InUse); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Microsecond):
			}
		}
	})
	return func() int32 { close(done); wg.Wait(); return peak.Load() }
}

// One operation holds a few of the pool's connections however many fields
// it asks for: a query of a hundred aliases never makes anything else wait
// for a connection (before, it took all of them, and other tenants' SFTP
// logins waited behind it).
func TestOneOperationHoldsAFewConnections(t *testing.T) {
	t.Parallel()
	const pool = 12
	e := newEnvWith(t, func(c *graph.Config) { c.DatabaseConnections = pool })
	e.svc.DB.X.SetMaxOpenConns(pool)
	_, token := e.account("Alpha", "o@alpha.example")
	waitsBefore := e.svc.DB.X.Stats().WaitCount
	stop := peakInUse(e)
	var out map[string]struct{ Name string }
	e.mustDo(token, aliased(100), nil, &out)
	peak := stop()
	if len(out) != 100 || out["a99"].Name != "Alpha" {
		t.Fatalf("the aliased query answered %d fields (a99: %+v), want 100 naming Alpha", len(out), out["a99"])
	}
	if waits := e.svc.DB.X.Stats().WaitCount - waitsBefore; waits != 0 {
		t.Errorf("one query waited %d times for a connection of a pool of %d: it took all of them", waits, pool)
	}
	if peak > graph.DefaultRequestConnections {
		t.Errorf("one query held %d connections at once, want at most %d", peak, graph.DefaultRequestConnections)
	}
}

// Requests take at most the API's share of the pool (the pool less a
// quarter): eight requests of a hundred aliases from one account and
// another tenant's at the same time are all answered, and nothing waits for
// the pool (SFTP logins and the workers would have).
func TestAPIRequestsLeaveThePoolsReserve(t *testing.T) {
	t.Parallel()
	const pool = 16 // the API's share: 12
	e := newEnvWith(t, func(c *graph.Config) { c.DatabaseConnections = pool })
	e.svc.DB.X.SetMaxOpenConns(pool)
	_, alpha := e.account("Alpha", "o@alpha.example")
	_, beta := e.account("Beta", "o@beta.example")
	waitsBefore := e.svc.DB.X.Stats().WaitCount
	stop := peakInUse(e)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var out map[string]struct{ Name string }
			e.mustDo(alpha, aliased(100), nil, &out)
		})
	}
	var out struct{ Account struct{ Name string } }
	e.mustDo(beta, `{ account { name } }`, nil, &out)
	wg.Wait()
	peak := stop()
	if out.Account.Name != "Beta" {
		t.Fatalf("Beta's request answered %+v", out)
	}
	if waits := e.svc.DB.X.Stats().WaitCount - waitsBefore; waits != 0 {
		t.Errorf("the requests waited %d times for a connection of a pool of %d: they took all of it", waits, pool)
	}
	if peak > 12 {
		t.Errorf("the requests held %d connections at once, want at most 12", peak)
	}
}
