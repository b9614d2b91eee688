package domain_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
)

// A password-reset request for an address with an account and one without
// do the same database work, statement for statement: the same transactions,
// each with as many statements and as many row writes, all committed. Timing
// then cannot tell them apart without a flaky stopwatch test. Before, the
// unknown address's second transaction only read, and skipped the log flush
// a writing commit costs (answers were about 2.5 ms faster).
func TestPasswordResetRequestsDoTheSameWork(t *testing.T) {
	rec := &statementRecorder{}
	db := recordingDB(t, rec)
	svc := domain.New(db)
	ctx := context.Background()
	staff, err := svc.People.CreateStaff(tenant.SystemContext(ctx), "support@skiff.test", "Sam", "staff password 123")
	if err != nil {
		t.Fatal(err)
	}
	staffCtx := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindStaff, ID: staff.ID, Name: staff.Name, Email: staff.Email})
	if _, _, err := svc.Accounts.CreateAccount(staffCtx, account.CreateAccountInput{Name: "Acme", OwnerEmail: "olive@acme.test", OwnerName: "Olive"}); err != nil {
		t.Fatal(err)
	}

	shape := func(email string) []string {
		t.Helper()
		rec.start()
		if err := svc.People.RequestPasswordReset(ctx, email); err != nil {
			t.Fatal(err)
		}
		return rec.stop()
	}
	// Twice each, so that the counter row exists for both the second time.
	for range 2 {
		known, unknown := shape("olive@acme.test"), shape("nobody@acme.test")
		if !slices.Equal(known, unknown) {
			t.Fatalf("an address with an account:\n  %s\nwithout:\n  %s", strings.Join(known, "\n  "), strings.Join(unknown, "\n  "))
		}
	}
	var sent int
	if err := db.X.Get(&sent, `SELECT count(*) FROM outbox WHERE kind = 'password_reset'`); err != nil {
		t.Fatal(err)
	}
	if sent != 2 {
		t.Errorf("%d reset emails queued; want 2, both to the address with an account", sent)
	}
}

// statementRecorder notes, while started, each transaction as the kinds of
// its statements (read or write) and how it ended.
type statementRecorder struct {
	mu   sync.Mutex
	on   bool
	txs  []string
	open []string
}

func (r *statementRecorder) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.txs, r.open = true, nil, nil
}

func (r *statementRecorder) stop() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.txs
}

func (r *statementRecorder) statement(query string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return
	}
	kind := "read"
	q := strings.ToUpper(strings.TrimSpace(query))
	for _, w := range []string{"INSERT", "UPDATE", "DELETE"} {
		if strings.HasPrefix(q, w) || strings.Contains(q, " "+w+" ") {
			kind = "write"
		}
	}
	r.open = append(r.open, kind)
}

func (r *statementRecorder) end(how string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return
	}
	r.txs = append(r.txs, fmt.Sprintf("%v then %s", r.open, how))
	r.open = nil
}

// recordingDB is Skiff's store on a new database through a driver that
// tells rec about every statement and transaction end.
func recordingDB(t *testing.T, rec *statementRecorder) *tenant.DB {
	t.Helper()
	c, err := pq.NewConnector(pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	x := sqlx.NewDb(sql.OpenDB(recordingConnector{c, rec}), "postgres")
	t.Cleanup(func() { x.Close() })
	return tenant.NewDB(x)
}

type recordingConnector struct {
	driver.Connector
	rec *statementRecorder
}

func (c recordingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &recordingConn{conn.(pqConn), c.rec}, nil
}

// pqConn is what lib/pq's connection implements and database/sql uses.
type pqConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.ConnPrepareContext
	driver.NamedValueChecker
}

type recordingConn struct {
	pqConn
	rec *statementRecorder
}

func (c *recordingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.rec.statement(q)
	return c.pqConn.ExecContext(ctx, q, args)
}

func (c *recordingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.rec.statement(q)
	return c.pqConn.QueryContext(ctx, q, args)
}

func (c *recordingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.rec.statement(q)
	return c.pqConn.PrepareContext(ctx, q)
}

func (c *recordingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.pqConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return recordingTx{tx, c.rec}, nil
}

type recordingTx struct {
	driver.Tx
	rec *statementRecorder
}

func (t recordingTx) Commit() error {
	t.rec.end("commit")
	return t.Tx.Commit()
}

func (t recordingTx) Rollback() error {
	t.rec.end("rollback")
	return t.Tx.Rollback()
}
