package activity

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/tenant"
)

// Filter narrows a listing of the activity log; zero fields match everything.
type Filter struct {
	// UserID lists one user's events.
	UserID string
	// PathPrefix lists events whose path (or, for renames and copies,
	// target path) starts with it, e.g. "/My Files/reports/".
	PathPrefix string
	// Actions lists events of these actions only.
	Actions []Action
	// From and To bound the time of the event: From <= at < To.
	From, To *time.Time
}

func (f Filter) check() error {
	if f.From != nil && f.To != nil && !f.From.Before(*f.To) {
		return tenant.Invalid("to", "to must be later than from")
	}
	for _, a := range f.Actions {
		if !a.Valid() {
			return tenant.Invalid("actions", "unknown action %q", a)
		}
	}
	if len(f.PathPrefix) > 4096 {
		return tenant.Invalid("pathPrefix", "the path prefix is too long")
	}
	return nil
}

// eventColumns are an Event's columns.
const eventColumns = `id, account_id, at, user_id, login, action, outcome, path, target_path, bytes, duration_ms,
	reason, client_addr, node, session_id, folder_id, folder_path`

// AccountEvents lists an account's SFTP activity in keyset pages (both
// ways, tenant.Keyset), newest first unless order says otherwise. Owners and administrators of the account and support staff may see
// it; another user of the account is FORBIDDEN (they see their own through
// UserEvents); anyone else gets "account not found".
func (s *Service) AccountEvents(ctx context.Context, accountID string, f Filter, order tenant.Order, page tenant.Page) (*tenant.Connection[*Event], error) {
	if err := tenant.RequireAccountAdmin(ctx, accountID, "the SFTP activity log"); err != nil {
		return nil, err
	}
	return s.events(ctx, accountID, f, order, page)
}

// UserEvents lists one user's SFTP activity, as AccountEvents: to the user
// themselves, to their account's owners and administrators and to support
// staff. To another user of the account, and to anyone outside it, the
// user does not exist.
func (s *Service) UserEvents(ctx context.Context, accountID, userID string, f Filter, order tenant.Order, page tenant.Page) (*tenant.Connection[*Event], error) {
	if err := RequireReader(ctx, accountID, userID); err != nil {
		return nil, err
	}
	f.UserID = userID
	return s.events(ctx, accountID, f, order, page)
}

// RequireReader checks that the principal may read userID's activity
// (accountID's whole log when userID is empty): see AccountEvents and
// UserEvents.
func RequireReader(ctx context.Context, accountID, userID string) error {
	if userID == "" {
		return tenant.RequireAccountAdmin(ctx, accountID, "the SFTP activity log")
	}
	p := tenant.PrincipalFrom(ctx)
	switch {
	case p == nil:
		return tenant.Errorf(tenant.EUnauthenticated, "log in first")
	case p.IsStaff(), p.IsAdmin(accountID):
		return nil
	case p.InAccount(accountID) && p.ID == userID:
		return nil
	}
	return tenant.NotFound("user")
}

// eventSorts are the orders of the activity log: AT, newest first by
// default, ties by ID. Either way a page walks sftp_activity_user (account,
// user, at, id) with a user, sftp_activity_account (account, at, id)
// without, from its cursor: it reads about as many index entries as it
// returns, however large the log (tenant/domain's TestListPagesUseTheirIndexes).
var eventSorts = &tenant.Sorts[*Event]{
	List:    "sftpActivity",
	Keys:    []tenant.SortKey[*Event]{{Field: "AT", Expr: "at", Type: "timestamptz", Of: func(e *Event) string { return tenant.TimeKey(e.At) }}},
	Default: tenant.Order{Field: "AT", Desc: true},
	ID:      "id",
	IDType:  "bigint",
	IDOf:    func(e *Event) string { return strconv.FormatInt(e.ID, 10) },
}

func (s *Service) events(ctx context.Context, accountID string, f Filter, order tenant.Order, page tenant.Page) (*tenant.Connection[*Event], error) {
	ks, err := eventSorts.NewKeyset(order, page)
	if err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	w, ok := filterWhere(accountID, f)
	if !ok {
		return &tenant.Connection[*Event]{}, nil
	}
	w.timeRange(f)
	lq := tenant.ListQuery{Select: `SELECT ` + eventColumns, From: `FROM sftp_activity WHERE ` + strings.Join(w.conds, " AND "), Args: w.args}
	var conn *tenant.Connection[*Event]
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		conn, err = tenant.ListPage(ctx, q, ks, lq)
		return err
	})
	return conn, err
}

// position is where an export's next statement starts: after the event at
// (at, id).
type position struct {
	at time.Time
	id int64
}

// exportQuery is the query of an export's next rows, newest first, through
// the same indexes as a page (eventSorts); ok is false when the filter can
// match nothing (a user ID that is no UUID).
func exportQuery(accountID string, f Filter, after *position, limit int) (query string, args []any, ok bool) {
	w, ok := filterWhere(accountID, f)
	if !ok {
		return "", nil, false
	}
	w.timeRange(f)
	if after != nil {
		w.add("(at, id) < (" + w.arg(after.at) + ", " + w.arg(after.id) + ")")
	}
	query = `SELECT ` + eventColumns + ` FROM sftp_activity WHERE ` + strings.Join(w.conds, " AND ") +
		` ORDER BY at DESC, id DESC LIMIT ` + w.arg(limit)
	return query, w.args, true
}

// where is a WHERE clause being built: its conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

// arg adds v as an argument and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + tenant.Itoa(len(w.args))
}

func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

// timeRange adds f's time range.
func (w *where) timeRange(f Filter) {
	if f.From != nil {
		w.add("at >= " + w.arg(*f.From))
	}
	if f.To != nil {
		w.add("at < " + w.arg(*f.To))
	}
}

// filterWhere is the account's events matching f's user, actions and path
// prefix (not its time range); ok is false when f can match nothing.
func filterWhere(accountID string, f Filter) (w *where, ok bool) {
	if f.UserID != "" && !tenant.IsUUID(f.UserID) {
		return nil, false
	}
	w = &where{}
	w.add("account_id = " + w.arg(accountID))
	if f.UserID != "" {
		w.add("user_id = " + w.arg(f.UserID) + "::uuid")
	}
	if len(f.Actions) > 0 {
		actions := make([]string, len(f.Actions))
		for i, a := range f.Actions {
			actions[i] = string(a)
		}
		w.add("action = ANY(" + w.arg(tenant.StringArray(actions)) + "::text[])")
	}
	if f.PathPrefix != "" {
		p := w.arg(likePrefix(f.PathPrefix))
		w.add("(path LIKE " + p + " OR target_path LIKE " + p + ")")
	}
	return w, true
}

// likePrefix is a LIKE pattern matching strings that start with prefix.
func likePrefix(prefix string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
}

// exportPage is how many events Export reads per statement.
const exportPage = 2000

// Export calls each with every event matching f, newest first, for a CSV
// export: the account's (f.UserID empty) or one user's, to those who may see
// it (see AccountEvents and UserEvents). It reads in pages of a few
// thousand, each in its own short transaction, so a range of millions of
// events is never held in memory nor in one long transaction; an error from
// each stops it.
func (s *Service) Export(ctx context.Context, accountID string, f Filter, each func(*Event) error) error {
	if err := RequireReader(ctx, accountID, f.UserID); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if f.UserID != "" {
		// Another account's user, like no user, is not found (rather than
		// an empty export that would tell them apart from nobody).
		var exists bool
		err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
			if !tenant.IsUUID(f.UserID) {
				return nil
			}
			return tenant.DBError(q.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM users WHERE account_id = $1 AND id = $2)`,
				accountID, f.UserID))
		})
		if err != nil {
			return err
		}
		if !exists {
			return tenant.NotFound("user")
		}
	}
	var after *position
	for {
		var rows []*Event
		err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
			query, args, ok := exportQuery(accountID, f, after, exportPage)
			if !ok {
				return nil
			}
			return tenant.DBError(q.SelectContext(ctx, &rows, query, args...))
		})
		if err != nil {
			return err
		}
		for _, e := range rows {
			if err := each(e); err != nil {
				return err
			}
		}
		if len(rows) < exportPage {
			return nil
		}
		last := rows[len(rows)-1]
		after = &position{last.At, last.ID}
	}
}

// Purge deletes the events older than before, in batches of batch rows,
// each in its own transaction so the table is never locked long and the
// recorders keep writing. It returns how many it deleted.
func (s *Service) Purge(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 10000
	}
	var total int64
	for {
		var n int64
		err := s.DB.CrossTenant(ctx, tenant.ScopeActivity, func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM sftp_activity WHERE id IN
				(SELECT id FROM sftp_activity WHERE at < $1 LIMIT $2)`, before, batch)
			if err != nil {
				return tenant.DBError(err)
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
	}
}
