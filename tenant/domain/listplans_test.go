package domain_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/activity"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/people"
)

// Every order of every screen's list reads a page from an index on a
// realistic table (10,000 rows of the account among other accounts' rows,
// 10,000 accounts):
// no sequential scan of the list's table and no sort but of a page already
// read, forward, from a cursor and backward; a batch of nested pages (each
// group's members) reads each page so. (The planner prefers what the statistics say; the tables are
// ANALYZEd as autovacuum would.)
func TestListPagesUseTheirIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("fills tables with 10,000 rows each")
	}
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	const n = 10000
	acme := w.account.ID
	fill := func(tx *sqlx.Tx, stmts ...string) error {
		for _, s := range stmts {
			var args []any
			if strings.Contains(s, "$1") {
				args = []any{acme, n}
			}
			if _, err := tx.Exec(s, args...); err != nil {
				return fmt.Errorf("%.60s: %w", s, err)
			}
		}
		return nil
	}
	// Other accounts and their users, on the support path; then the account's own rows.
	err := w.svc.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return fill(tx,
			`INSERT INTO accounts (name, created_at) SELECT 'Account ' || g, now() - g * interval '1 minute' FROM generate_series(1, 10000) g`,
			`INSERT INTO users (account_id, email, name, role, created_at)
				SELECT a.id, 'x' || g || '-' || a.id || '@bulk.example', 'X ' || g, 'USER', now()
				FROM (SELECT id FROM accounts WHERE name LIKE 'Account %' LIMIT 1000) a, generate_series(1, 5) g`)
	})
	if err == nil {
		err = w.svc.DB.InAccount(ctx, acme, func(tx *sqlx.Tx) error {
			return fill(tx,
				`INSERT INTO users (account_id, email, name, role, created_at)
				SELECT $1, 'u' || g || '@bulk.example', 'User ' || (g % 997), 'USER', now() - (g % 1000) * interval '1 second'
				FROM generate_series(1, $2) g`,
				// Half of them have logged in (tokens: the trigger keeps the row's last login).
				`INSERT INTO tokens (hash, account_id, user_id, created_at, expires_at)
				SELECT sha256(convert_to(id::text, 'UTF8')), account_id, id, now() - (abs(hashtext(email)) % 100000) * interval '1 second', now() + interval '1 day'
				FROM users WHERE account_id = $1 AND email LIKE 'u%' AND hashtext(email) % 2 = 0 AND $2 > 0`,
				`INSERT INTO contacts (account_id, email, name, company, created_at)
				SELECT $1, 'c' || g || '@bulk.example', 'Contact ' || (g % 997), 'Company ' || (g % 97), now() - (g % 1000) * interval '1 second'
				FROM generate_series(1, $2) g`,
				`INSERT INTO project_folders (account_id, name, created_by, created_at, updated_at)
				SELECT $1, 'Folder ' || (g % 997), (SELECT id FROM users WHERE email = 'owner@acme.example'), now() - g * interval '1 second', now()
				FROM generate_series(1, $2) g`,
				// One folder shared with every user (ProjectFolder.shares).
				`INSERT INTO project_folders (account_id, name, created_by, created_at, updated_at)
				SELECT $1, 'Shared widely', (SELECT id FROM users WHERE email = 'owner@acme.example'), now(), now() WHERE $2 > 0`,
				`INSERT INTO folder_shares (account_id, folder_id, user_id, preset, created_at)
				SELECT $1, (SELECT id FROM project_folders WHERE name = 'Shared widely'), id, 'READ', now() - (abs(hashtext(email)) % 1000) * interval '1 second'
				FROM users WHERE account_id = $1 AND email LIKE 'u%' AND $2 > 0`,
				`INSERT INTO audit_events (account_id, actor_kind, kind, at)
				SELECT $1, 'SYSTEM', 'bulk.event', now() - g * interval '1 second' FROM generate_series(1, $2) g`,
				`INSERT INTO outbox (account_id, kind, recipient, data, status, created_at, sent_at)
				SELECT $1, 'bulk', 'r' || g || '@bulk.example', '{}', 'SENT', now() - g * interval '1 second', now() FROM generate_series(1, $2) g`)
		})
	}
	if err == nil { // the SFTP activity log: only the recorders' scope writes it
		err = w.svc.DB.CrossTenant(ctx, tenant.ScopeActivity, func(tx *sqlx.Tx) error {
			return fill(tx,
				`INSERT INTO sftp_activity (account_id, at, user_id, login, action, outcome, path)
				SELECT $1, now() - (g % 1000) * interval '1 second',
					CASE WHEN g % 2 = 0 THEN '`+w.owner.ID+`'::uuid ELSE '00000000-0000-4000-8000-000000000001' END,
					'l', 'UPLOAD', 'SUCCESS', '/f' || g FROM generate_series(1, $2) g`,
				`INSERT INTO sftp_activity (account_id, at, user_id, login, action, outcome, path)
				SELECT a.id, now() - g * interval '1 second', '`+w.owner.ID+`', 'l', 'UPLOAD', 'SUCCESS', '/f' || g
				FROM (SELECT id FROM accounts WHERE name LIKE 'Account %' LIMIT 1000) a, generate_series(1, 10) g`)
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.DB.X.Exec(`ANALYZE`); err != nil {
		t.Fatal(err)
	}
	staff := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindStaff, ID: "00000000-0000-0000-0000-000000000001", Name: "Support"})
	pro := w.builtinGroup("PRO")
	var pageOfAccounts []string // staff's accounts page: the account and four with a few users each
	if err := w.svc.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tx.Select(&pageOfAccounts, `SELECT $1::text UNION ALL (SELECT DISTINCT account_id::text FROM users
			WHERE email LIKE 'x%' ORDER BY 1 LIMIT 4)`, acme)
	}); err != nil || len(pageOfAccounts) != 5 {
		t.Fatalf("accounts: %v, %v", pageOfAccounts, err)
	}

	var widely string
	if err := w.svc.DB.InAccount(ctx, acme, func(tx *sqlx.Tx) error {
		return tx.Get(&widely, `SELECT id FROM project_folders WHERE name = 'Shared widely'`)
	}); err != nil {
		t.Fatal(err)
	}

	type list struct {
		name   string
		table  string // the list's table, which an index must read
		fields []string
		page   func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) // cursors
		staff  bool
	}
	cursors := func(c []string, err error) ([]string, error) { return c, err }
	lists := []list{
		{"users", "users", []string{"NAME", "EMAIL", "CREATED_AT", "LAST_LOGIN"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			c, err := w.svc.People.Users(ctx, acme, people.UserFilter{}, o, p)
			return cursors(curs(c, err))
		}, false},
		{"members", "users", []string{"NAME", "EMAIL", "CREATED_AT", "LAST_LOGIN"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Sharing.GroupMembers(ctx, pro, o, p))
		}, false},
		{"members (staff)", "users", []string{"NAME", "EMAIL", "CREATED_AT", "LAST_LOGIN"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Sharing.GroupMembers(ctx, pro, o, p))
		}, true},
		{"users of a page of accounts (staff)", "users", []string{"NAME", "EMAIL", "CREATED_AT", "LAST_LOGIN"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			m, _, err := w.svc.People.UsersOf(ctx, pageOfAccounts, people.UserFilter{}, o, p)
			if err != nil {
				return nil, err
			}
			return m[acme].Cursors, nil
		}, true},
		{"contacts", "contacts", []string{"NAME", "EMAIL", "COMPANY", "CREATED_AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.People.Contacts(ctx, acme, "", o, p))
		}, false},
		{"projectFolders", "project_folders", []string{"NAME", "CREATED_AT", "UPDATED_AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Sharing.ProjectFolders(ctx, acme, "", o, p))
		}, false},
		{"a folder's shares", "folder_shares", []string{"SHARED_AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			m, refused, err := w.svc.Sharing.FolderSharesOf(ctx, []string{widely}, o, p)
			if err == nil {
				err = refused[widely]
			}
			if err != nil {
				return nil, err
			}
			return m[widely].Cursors, nil
		}, false},
		{"auditEvents", "audit_events", []string{"AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Audit.Events(ctx, acme, audit.Filter{}, o, p))
		}, false},
		{"notifications", "outbox", []string{"CREATED_AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Outbox.Notifications(ctx, acme, o, p))
		}, false},
		{"sftpActivity", "sftp_activity", []string{"AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Activity.AccountEvents(ctx, acme, activity.Filter{}, o, p))
		}, false},
		{"sftpActivity (one user)", "sftp_activity", []string{"AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Activity.UserEvents(ctx, acme, w.owner.ID, activity.Filter{}, o, p))
		}, false},
		{"sftpActivity (one user, a time range)", "sftp_activity", []string{"AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			from, to := time.Now().Add(-900*time.Second), time.Now().Add(-100*time.Second)
			return curs(w.svc.Activity.UserEvents(ctx, acme, w.owner.ID, activity.Filter{From: &from, To: &to}, o, p))
		}, false},
		{"accounts", "accounts", []string{"NAME", "CREATED_AT"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Accounts.Accounts(ctx, "", o, p))
		}, true},
		{"accounts", "account_activity", []string{"LAST_ACTIVITY"}, func(ctx context.Context, o tenant.Order, p tenant.Page) ([]string, error) {
			return curs(w.svc.Accounts.Accounts(ctx, "", o, p))
		}, true},
	}
	for _, l := range lists {
		for _, field := range l.fields {
			for _, desc := range []bool{false, true} {
				o := tenant.Order{Field: field, Desc: desc}
				caller := w.as(w.owner)
				if l.staff {
					caller = staff
				}
				var seen []string
				var seenArgs [][]any
				watch := tenant.WithListQueries(caller, func(q string, args []any) { seen, seenArgs = append(seen, q), append(seenArgs, args) })
				first, err := l.page(watch, o, tenant.Page{First: 50})
				if err != nil || len(first) != 50 {
					t.Fatalf("%s %v: %d rows, %v", l.name, o, len(first), err)
				}
				if _, err := l.page(watch, o, tenant.Page{First: 50, After: first[49]}); err != nil {
					t.Fatal(err)
				}
				last, err := l.page(watch, o, tenant.Page{Last: 50})
				if err != nil || len(last) != 50 {
					t.Fatalf("%s %v: %d rows, %v", l.name, o, len(last), err)
				}
				if _, err := l.page(watch, o, tenant.Page{Last: 50, Before: last[0]}); err != nil {
					t.Fatal(err)
				}
				for i, q := range seen {
					plan := explain(t, w, l.staff, acme, q, seenArgs[i])
					if bad := planProblem(plan, l.table); bad != "" {
						t.Errorf("%s %v page %d: %s\n%s\n%s", l.name, o, i, bad, q, plan)
					}
				}
			}
		}
	}
}

func curs[T any](c *tenant.Connection[T], err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return c.Cursors, nil
}

// builtinGroup is the ID of one of the account's built-in groups.
func (w *world) builtinGroup(b string) string {
	w.t.Helper()
	var id string
	err := w.svc.DB.InAccount(context.Background(), w.account.ID, func(tx *sqlx.Tx) error {
		return tx.Get(&id, `SELECT id FROM groups WHERE builtin = $1`, b)
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

// explain is the plan of q in the scope the list runs in, as JSON.
func explain(t *testing.T, w *world, staff bool, accountID, q string, args []any) string {
	t.Helper()
	var plan string
	run := func(tx *sqlx.Tx) error {
		if staff || strings.Contains(q, "CROSS JOIN LATERAL") { // as ListPage plans cross-tenant pages (ListQuery.CrossTenant), and ListPages every batch
			if _, err := tx.Exec(`SET LOCAL enable_sort = off`); err != nil {
				return err
			}
		}
		return tx.Get(&plan, `EXPLAIN (FORMAT JSON) `+q, args...)
	}
	var err error
	if staff {
		err = w.svc.DB.CrossTenant(context.Background(), tenant.ScopeStaff, run)
	} else {
		err = w.svc.DB.InAccount(context.Background(), accountID, run)
	}
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// planProblem says what is wrong with a page's plan: a sort, or table not
// read through an index; "" when nothing is.
func planProblem(plan, table string) string {
	var root []struct{ Plan planNode }
	if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
		return fmt.Sprintf("unreadable plan: %v", err)
	}
	indexed := false
	var problem string
	var walk func(n planNode)
	walk = func(n planNode) {
		switch {
		// An Incremental Sort only orders ties of an index's order, and a Sort
		// over a Limit orders a page already read (a batch of pages, numbered).
		case n.NodeType == "Sort" && !n.has("Limit"):
			problem = "the page is sorted, not read in index order"
		case n.RelationName == table && n.NodeType == "Seq Scan":
			problem = "a sequential scan of " + table
		case n.RelationName == table && strings.HasPrefix(n.NodeType, "Index"):
			indexed = true
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(root[0].Plan)
	if problem == "" && !indexed {
		problem = table + " is not read through an index"
	}
	return problem
}

type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	Plans        []planNode `json:"Plans"`
}

// has reports whether n or a node below it is of type typ.
func (n planNode) has(typ string) bool {
	if n.NodeType == typ {
		return true
	}
	for _, c := range n.Plans {
		if c.has(typ) {
			return true
		}
	}
	return false
}
