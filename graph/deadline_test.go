package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/internal/testkit"
)

// A request still running at Config.RequestTimeout (serve: --http-write-
// timeout, past which its answer could not be written) is stopped: its
// database statement is canceled and its connections are freed, instead of
// waiting as long as whatever holds it up. Here a table lock holds a query
// up; the request ends with TIMEOUT while the lock is still held.
func TestARequestIsStoppedAtItsTimeout(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.RequestTimeout = 500 * time.Millisecond })
	_, owner := e.account("Acme", "owner@acme.example")
	ctx := context.Background()
	lock, err := e.svc.DB.X.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	answered := make(chan response, 1)
	go func() { answered <- e.do(owner, `{ account { contacts(first: 5) { edges { node { id } } } } }`, nil) }()
	var r response
	select {
	case r = <-answered:
	case <-time.After(20 * time.Second):
		lock.Rollback()
		<-answered
		t.Fatal("the request was still waiting for the lock 20 s on, past its 0.5 s")
	}
	if r.status != 200 || len(r.Errors) != 1 || r.Errors[0].code() != "TIMEOUT" || r.Errors[0].Message != "request timed out: it ran longer than the server allows" {
		t.Fatalf("answer: %+v, want one TIMEOUT error", r)
	}
	testkit.Eventually(t, "the request's statement to be canceled", func() bool {
		var waiting int
		if err := e.svc.DB.X.GetContext(ctx, &waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		return waiting == 0
	})
}
