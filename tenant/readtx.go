package tenant

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// readTx is one read-only transaction in one account's scope that the reads
// of one request share, instead of a transaction each: a GraphQL query that
// loads a page of users and their keys, credentials and groups pays for one
// BEGIN, scoping and ROLLBACK instead of one per service call.
//
// Row-level security is as for InAccount: the transaction runs as AppRole
// with the account pinned, so it sees only that account's rows. It serves
// only InAccount calls for that same account; any other account or scope
// gets its own transaction as before.
//
// One pq connection takes one statement at a time, so calls take turns. A
// call that finds the transaction busy (a concurrent loader, or an InAccount
// nested in another's callback) does not wait for it: it runs in its own
// transaction, so nothing can deadlock. Only when the request's shares
// (WithShares) are all held does it wait, for a slot or for the shared
// transaction, whichever frees first.
type readTx struct {
	db        *DB
	ctx       context.Context // the request's: the transaction ends with it at the latest
	accountID string

	lock    chan struct{} // holds one token while a call runs in tx (a channel, so that hold can wait for it)
	tx      *sqlx.Tx
	release func() // gives back the shares tx holds
	closed  bool   // ended, or unusable after a failed statement: callers begin their own
}

type readTxKey struct{}

// ReadOnly returns a context in which InAccount calls for accountID share
// one read-only transaction, begun at the first of them, and end, which ends
// it (waiting for a call in progress). Call end when the request is done; the
// transaction also ends when ctx does, so a request never holds it longer.
//
// Use it for requests that only read (GraphQL queries); a call that tries to
// write finds the transaction read-only and is run again in a transaction of
// its own. A failed statement leaves the shared transaction unusable, so the
// calls after it get transactions of their own rather than the failure.
func (db *DB) ReadOnly(ctx context.Context, accountID string) (context.Context, func()) {
	rt := &readTx{db: db, ctx: ctx, accountID: accountID, lock: make(chan struct{}, 1)}
	return context.WithValue(ctx, readTxKey{}, rt), rt.end
}

func readTxFrom(ctx context.Context) *readTx {
	rt, _ := ctx.Value(readTxKey{}).(*readTx)
	return rt
}

// run runs fn in the shared transaction and reports whether it did; when it
// did not, the caller runs fn in a transaction of its own. locked says the
// caller already holds rt.lock (hold gave it); run gives it back.
func (rt *readTx) run(fn func(tx *sqlx.Tx) error, locked bool) (shared bool, err error) {
	if !locked {
		select {
		case rt.lock <- struct{}{}:
		default:
			return false, nil
		}
	}
	defer func() { <-rt.lock }()
	if rt.closed {
		return false, nil
	}
	if rt.tx == nil {
		if err := rt.begin(); err != nil {
			rt.closed = true // the caller's own transaction reports what is wrong
			return false, nil
		}
	}
	finished := false
	defer func() {
		if !finished { // fn panicked: the transaction's state is unknown
			rt.rollback()
		}
	}()
	err = fn(rt.tx)
	finished = true
	if err != nil && !leavesTxUsable(err) {
		rt.rollback()
		var pqe *pq.Error
		if errors.As(err, &pqe) && pqe.Code == "25006" { // read_only_sql_transaction: fn writes
			return false, nil
		}
	}
	return true, err
}

// begin begins the shared transaction, which holds the request's shares
// until it ends; rt.lock is held.
func (rt *readTx) begin() error {
	release, _, err := hold(rt.ctx, nil)
	if err != nil {
		return err
	}
	rt.db.txs.Add(1)
	tx, err := rt.db.X.BeginTxx(rt.ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		release()
		return err
	}
	if err := scopeTx(rt.ctx, tx, rt.accountID, ""); err != nil {
		_ = tx.Rollback()
		release()
		return err
	}
	rt.tx, rt.release = tx, release
	return nil
}

// rollback ends the transaction and turns later calls to their own; rt.lock is held.
func (rt *readTx) rollback() {
	if rt.tx != nil {
		_ = rt.tx.Rollback() // read-only: nothing to keep
		rt.tx = nil
		rt.release()
	}
	rt.closed = true
}

func (rt *readTx) end() {
	rt.lock <- struct{}{}
	defer func() { <-rt.lock }()
	rt.rollback()
}

// leavesTxUsable reports whether the transaction in which fn failed with err
// can run more statements: application errors (not found, forbidden, invalid
// input) can; a statement PostgreSQL refused aborts the transaction, and
// anything unexplained is treated as if it had.
func leavesTxUsable(err error) bool {
	var pqe *pq.Error
	if errors.As(err, &pqe) {
		return false
	}
	var e *Error
	return errors.As(err, &e) && e.Code != EInternal
}
