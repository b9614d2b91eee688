package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// AppRole is the PostgreSQL role every transaction runs as. It owns no table and
// has no BYPASSRLS, so row-level security always applies (see migrations/00001).
const AppRole = "skiff_app"

// Scope names a cross-tenant path. Each is allowed only the rows its RLS
// policies grant; a transaction has either an account or a scope, never both.
type Scope string

const (
	ScopeStaff     Scope = "staff"     // support staff screens and operations
	ScopeDirectory Scope = "directory" // SFTP login resolution before the tenant is known
	ScopeAuth      Scope = "auth"      // bearer-token and email/password login
	ScopeOutbox    Scope = "outbox"    // the email worker
	ScopeActivity  Scope = "activity"  // the SFTP activity log's writer, retention purge and digests
	ScopeSFTPNode  Scope = "sftp_node" // a node publishing its live SFTP sessions
)

// Queryer is what store functions take: a transaction from InAccount or
// CrossTenant. Store functions never open transactions of their own.
type Queryer interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

var _ Queryer = (*sqlx.Tx)(nil)

// DB is the store of record. It hands out transactions scoped to one account
// or to one explicit cross-tenant path; nothing reads tenant data outside one.
type DB struct {
	X *sqlx.DB

	txs atomic.Int64 // transactions begun, for tests and metrics
}

// Transactions is how many transactions the DB has begun; tests use it to
// check that a request's cost does not grow with its page size.
func (db *DB) Transactions() int64 { return db.txs.Load() }

// NewDB wraps an open pool.
func NewDB(db *sqlx.DB) *DB { return &DB{X: db} }

// DefaultMaxConnections is the pool Open sets up (--database-max-connections' default).
const DefaultMaxConnections = 32

// Open connects to url and checks the connection.
func Open(ctx context.Context, url string) (*DB, error) {
	x, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	x.SetMaxOpenConns(DefaultMaxConnections)
	x.SetMaxIdleConns(DefaultMaxConnections)
	if err := x.PingContext(ctx); err != nil {
		x.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &DB{X: x}, nil
}

// Close closes the pool.
func (db *DB) Close() error { return db.X.Close() }

// InAccount runs fn in a transaction that sees only accountID's rows. The
// transaction commits if fn returns nil and rolls back otherwise.
func (db *DB) InAccount(ctx context.Context, accountID string, fn func(tx *sqlx.Tx) error) error {
	if accountID == "" {
		return &Error{Code: EInternal, Message: "internal error", Err: errors.New("InAccount without an account")}
	}
	rt := readTxFrom(ctx)
	if rt != nil && rt.db == db && rt.accountID == accountID {
		if shared, err := rt.run(fn, false); shared {
			return err
		}
	} else {
		rt = nil
	}
	return db.run(ctx, nil, accountID, "", fn, rt)
}

// Snapshot runs fn in a read-only REPEATABLE READ transaction that sees only
// accountID's rows, so that its reads agree with each other: the policy
// reads an account's rules from three tables this way.
func (db *DB) Snapshot(ctx context.Context, accountID string, fn func(tx *sqlx.Tx) error) error {
	if accountID == "" {
		return &Error{Code: EInternal, Message: "internal error", Err: errors.New("Snapshot without an account")}
	}
	return db.run(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, accountID, "", fn, nil)
}

// CrossTenant runs fn in a transaction on one explicit cross-tenant path.
// Only the policies written for that scope apply; see migrations.
func (db *DB) CrossTenant(ctx context.Context, scope Scope, fn func(tx *sqlx.Tx) error) error {
	return db.run(ctx, nil, "", scope, fn, nil)
}

// run runs fn in a transaction of its own, which holds a slot of each of
// ctx's shares. While it waits for one, the request's shared transaction rt
// (nil for none) freeing is as good: fn runs there instead.
func (db *DB) run(ctx context.Context, opts *sql.TxOptions, accountID string, scope Scope, fn func(tx *sqlx.Tx) error, rt *readTx) (err error) {
	var lock chan struct{} // nil: a select never takes it
	if rt != nil {
		lock = rt.lock
	}
	release, locked, err := hold(ctx, lock)
	for locked {
		if shared, err := rt.run(fn, true); shared {
			return err
		}
		// The shared transaction ended meanwhile: wait for a slot alone.
		release, locked, err = hold(ctx, nil)
	}
	if err != nil {
		return err
	}
	defer release()
	db.txs.Add(1)
	tx, err := db.X.BeginTxx(ctx, opts)
	if err != nil {
		return DBError(fmt.Errorf("begin: %w", err))
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
			return
		}
		if cerr := tx.Commit(); cerr != nil {
			err = DBError(fmt.Errorf("commit: %w", cerr))
		}
	}()
	if err := scopeTx(ctx, tx, accountID, scope); err != nil {
		return err
	}
	return fn(tx)
}

// scopeTx makes tx run as AppRole in one account or one scope. The settings
// are local to tx, so they end with it. The values are quoted literals rather
// than parameters: lib/pq sends a statement without parameters in one round
// trip, with parameters in two (parse, then bind and execute), and every
// transaction pays this one.
func scopeTx(ctx context.Context, tx *sqlx.Tx, accountID string, scope Scope) error {
	if _, err := tx.ExecContext(ctx, `SELECT set_config('role', `+pq.QuoteLiteral(AppRole)+`, true), `+
		`set_config('skiff.account_id', `+pq.QuoteLiteral(accountID)+`, true), `+
		`set_config('skiff.scope', `+pq.QuoteLiteral(string(scope))+`, true)`); err != nil {
		return DBError(fmt.Errorf("scope transaction: %w", err))
	}
	return nil
}

// Canceled reports whether err is a database call cut short by its
// context: Go's context errors, or PostgreSQL's query_canceled (57014),
// which lib/pq's cancel request brings back when the context ends
// mid-statement (a statement timeout has the same code: callers ask only
// once their context has ended).
func Canceled(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pqe *pq.Error
	return errors.As(err, &pqe) && pqe.Code == "57014"
}

// DBError translates driver errors once, at the database boundary.
func DBError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &Error{Code: ENotFound, Message: "not found", Err: err}
	}
	var pqe *pq.Error
	if errors.As(err, &pqe) {
		switch pqe.Code {
		case "23505": // unique_violation
			return &Error{Code: EConflict, Message: "already exists", Err: err}
		case "23503": // foreign_key_violation
			return &Error{Code: ENotFound, Message: "not found", Err: err}
		case "23514", "22001", "22P02": // check_violation, string too long, invalid text (e.g. a bad uuid)
			return &Error{Code: EInvalid, Message: "invalid value", Err: err}
		case "22021": // character_not_in_repertoire: a NUL (or invalid UTF-8) in text from the caller
			return &Error{Code: EInvalid, Message: "text must not contain NUL characters", Err: err}
		case "40001", "40P01": // serialization failure, deadlock
			return &Error{Code: EConflict, Message: "the change clashed with another one; try again", Err: err}
		}
	}
	return &Error{Code: EInternal, Message: "internal error", Err: err}
}
