package pgtest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/skiffhq/skiff/tenant"
)

// OpenCountingStore is OpenStore on a pool that counts the statements it
// sends: every query and exec, prepares too, but not BEGIN, COMMIT or
// ROLLBACK (tenant.DB.Transactions counts transactions). Tests use it to
// check that a page costs the same number of statements whatever its size.
func OpenCountingStore(t testing.TB) (*tenant.DB, *atomic.Int64) {
	t.Helper()
	pc, err := pq.NewConnector(NewDB(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	n := new(atomic.Int64)
	x := sqlx.NewDb(sql.OpenDB(&countingConnector{pc, n}), "postgres")
	x.SetMaxOpenConns(32) // as tenant.Open
	x.SetMaxIdleConns(32)
	t.Cleanup(func() { _ = x.Close() })
	return tenant.NewDB(x), n
}

type countingConnector struct {
	driver.Connector
	n *atomic.Int64
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{cn.(pqConn), c.n}, nil
}

// pqConn is what lib/pq's connections implement and database/sql uses.
type pqConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.QueryerContext
	driver.ExecerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// countingConn passes everything to lib/pq's connection and counts the
// statements.
type countingConn struct {
	pqConn
	n *atomic.Int64
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.pqConn.QueryContext(ctx, query, args)
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.pqConn.ExecContext(ctx, query, args)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.n.Add(1)
	return c.pqConn.PrepareContext(ctx, query)
}

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	c.n.Add(1)
	return c.pqConn.Prepare(query)
}
