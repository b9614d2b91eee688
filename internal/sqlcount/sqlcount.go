// Package sqlcount counts the SQL statements and transactions an
// application sends through database/sql to PostgreSQL (lib/pq), for
// benchmarks and tests that hold a request's cost constant.
package sqlcount

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Counter counts the SQL statements and transactions an application sends
// through a pool it opened, by wrapping lib/pq's connections.
// Every query, exec and prepared-statement execution counts once; BEGIN and
// COMMIT are counted as transactions, not statements.
type Counter struct {
	statements atomic.Int64
	txs        atomic.Int64
}

// Open returns a pool on dsn whose traffic c counts, as sqlx for tenant.DB,
// sized as tenant.Open sizes its pool.
func (c *Counter) Open(dsn string) (*sqlx.DB, error) {
	base, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(countingConnector{base, c})
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	return sqlx.NewDb(db, "postgres"), nil
}

// Snapshot is what was counted so far.
func (c *Counter) Snapshot() (statements, txs int64) {
	return c.statements.Load(), c.txs.Load()
}

type countingConnector struct {
	base *pq.Connector
	c    *Counter
}

func (k countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := k.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn: conn, c: k.c}, nil
}

func (k countingConnector) Driver() driver.Driver { return k.base.Driver() }

// pqConn is what lib/pq's connection implements and database/sql uses; the
// wrapper forwards all of it, so database/sql takes the same paths as with
// lib/pq alone (no extra prepare round trips).
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

type countingConn struct {
	conn driver.Conn
	c    *Counter
}

var _ pqConn = (*countingConn)(nil)

func (w *countingConn) pq() (pqConn, error) {
	p, ok := w.conn.(pqConn)
	if !ok {
		return nil, errors.New("sqlcount: lib/pq connection lacks a database/sql interface")
	}
	return p, nil
}

func (w *countingConn) Prepare(q string) (driver.Stmt, error) {
	return w.PrepareContext(context.Background(), q)
}

func (w *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	p, err := w.pq()
	if err != nil {
		return nil, err
	}
	st, err := p.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, c: w.c}, nil
}

func (w *countingConn) Close() error { return w.conn.Close() }

func (w *countingConn) Begin() (driver.Tx, error) {
	return w.BeginTx(context.Background(), driver.TxOptions{})
}

func (w *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	p, err := w.pq()
	if err != nil {
		return nil, err
	}
	w.c.txs.Add(1)
	return p.BeginTx(ctx, opts)
}

func (w *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	p, err := w.pq()
	if err != nil {
		return nil, err
	}
	w.c.statements.Add(1)
	return p.QueryContext(ctx, q, args)
}

func (w *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	p, err := w.pq()
	if err != nil {
		return nil, err
	}
	w.c.statements.Add(1)
	return p.ExecContext(ctx, q, args)
}

func (w *countingConn) Ping(ctx context.Context) error {
	p, err := w.pq()
	if err != nil {
		return err
	}
	return p.Ping(ctx)
}

func (w *countingConn) ResetSession(ctx context.Context) error {
	p, err := w.pq()
	if err != nil {
		return err
	}
	return p.ResetSession(ctx)
}

func (w *countingConn) IsValid() bool {
	p, err := w.pq()
	return err == nil && p.IsValid()
}

func (w *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	p, err := w.pq()
	if err != nil {
		return err
	}
	return p.CheckNamedValue(nv)
}

type countingStmt struct {
	driver.Stmt
	c *Counter
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.statements.Add(1)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, errors.New("sqlcount: statement lacks ExecContext")
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.statements.Add(1)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return nil, errors.New("sqlcount: statement lacks QueryContext")
}
