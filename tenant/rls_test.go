package tenant_test

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
)

// Row-level security is the second wall between tenants: a query that forgets
// its account filter still sees only the transaction's account.
func TestUnfilteredQueriesSeeOnlyTheirTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.OpenStore(t)
	svc := domain.New(db)
	sys := tenant.SystemContext(ctx)
	a, _, err := svc.Accounts.CreateAccount(sys, account.CreateAccountInput{Name: "Alpha", OwnerEmail: "o@alpha.example", OwnerName: "A"})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := svc.Accounts.CreateAccount(sys, account.CreateAccountInput{Name: "Beta", OwnerEmail: "o@beta.example", OwnerName: "B"})
	if err != nil {
		t.Fatal(err)
	}

	tables := []string{"accounts", "users", "contacts", "tokens", "audit_events", "sftp_credentials", "ssh_keys", "sftp_module_requests", "dedicated_ip_requests", "file_times"}
	err = db.InAccount(ctx, b.ID, func(tx *sqlx.Tx) error {
		for _, table := range tables {
			var foreign int
			// Deliberately unfiltered but for naming the other tenant.
			q := `SELECT count(*) FROM ` + table + ` WHERE account_id = $1`
			if table == "accounts" {
				q = `SELECT count(*) FROM accounts WHERE id = $1`
			}
			if err := tx.GetContext(ctx, &foreign, q, a.ID); err != nil {
				return err
			}
			if foreign != 0 {
				t.Errorf("%s: Beta's transaction sees %d of Alpha's rows", table, foreign)
			}
		}
		var users int
		if err := tx.GetContext(ctx, &users, `SELECT count(*) FROM users`); err != nil {
			return err
		}
		if users != 1 {
			t.Errorf("an unfiltered SELECT of users sees %d rows, want Beta's 1", users)
		}
		// Writing into another tenant is refused too.
		_, err := tx.ExecContext(ctx, `UPDATE users SET name = 'Hijack' WHERE account_id = $1`, a.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.InAccount(ctx, b.ID, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO contacts (account_id, email, name) VALUES ($1, 'x@y.example', 'X')`, a.ID)
		return err
	})
	if err == nil {
		t.Error("Beta's transaction inserted a row into Alpha")
	}
	var name string
	if err := db.InAccount(ctx, a.ID, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &name, `SELECT name FROM users`)
	}); err != nil || name != "A" {
		t.Fatalf("Alpha's user = %q, %v", name, err)
	}

	// A transaction with neither account nor scope sees nothing at all.
	var n int
	if err := db.CrossTenant(ctx, "", func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &n, `SELECT count(*) FROM users`)
	}); err != nil || n != 0 {
		t.Fatalf("unscoped transaction sees %d users (%v)", n, err)
	}

	// The runtime role cannot bypass RLS and owns nothing.
	var role struct {
		User      string `db:"cu"`
		Bypass    bool   `db:"bypass"`
		Super     bool   `db:"super"`
		OwnTables int    `db:"owned"`
	}
	if err := db.InAccount(ctx, a.ID, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &role, `SELECT current_user AS cu, r.rolbypassrls AS bypass, r.rolsuper AS super,
			(SELECT count(*) FROM pg_tables WHERE tableowner = current_user) AS owned
			FROM pg_roles r WHERE r.rolname = current_user`)
	}); err != nil {
		t.Fatal(err)
	}
	if role.User != tenant.AppRole || role.Bypass || role.Super || role.OwnTables != 0 {
		t.Fatalf("runtime role = %+v", role)
	}
}

// The login scopes move a user's last login forward (through the triggers
// on tokens and sftp_credentials) and change nothing else of any user: not
// their email, role, SFTP access, password, allowlist or deletion (migration 00145).
func TestLoginScopesTouchOnlyLastLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.OpenStore(t)
	svc := domain.New(db)
	sys := tenant.SystemContext(ctx)
	const email, password = "o@alpha.example", "correct horse battery staple"
	a, owner, err := svc.Accounts.CreateAccount(sys, account.CreateAccountInput{Name: "Alpha", OwnerEmail: email, OwnerName: "A", OwnerPassword: password})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Email     string     `db:"email"`
		Role      string     `db:"role"`
		SFTP      bool       `db:"sftp_enabled"`
		Hash      *string    `db:"password_hash"`
		Allowlist string     `db:"ip_allowlist"`
		Deleted   *time.Time `db:"deleted_at"`
		LastLogin *time.Time `db:"last_login_at"`
	}
	read := func() row {
		t.Helper()
		var r row
		if err := db.InAccount(ctx, a.ID, func(tx *sqlx.Tx) error {
			return tx.GetContext(ctx, &r, `SELECT email, role, sftp_enabled, password_hash, ip_allowlist::text, deleted_at, last_login_at FROM users WHERE id = $1`, owner.ID)
		}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := svc.People.Login(ctx, email, password, netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	before := read()
	if before.LastLogin == nil {
		t.Fatal("a login did not set the user's last login")
	}

	for _, scope := range []tenant.Scope{tenant.ScopeAuth, tenant.ScopeDirectory} {
		for _, set := range []string{
			"email = 'thief@evil.example'", "role = 'USER'", "sftp_enabled = NOT sftp_enabled", "password_hash = NULL",
			"ip_allowlist = '{10.0.0.0/8}'", "deleted_at = now()",
			// Only the login triggers set it, and only forward.
			"last_login_at = now() + interval '1 year'",
		} {
			var changed int64
			err := db.CrossTenant(ctx, scope, func(tx *sqlx.Tx) error {
				res, err := tx.ExecContext(ctx, `UPDATE users SET `+set+` WHERE id = $1`, owner.ID)
				if err != nil {
					return err
				}
				changed, err = res.RowsAffected()
				return err
			})
			if err == nil && changed != 0 {
				t.Errorf("scope %s: UPDATE users SET %s changed %d rows", scope, set, changed)
			}
		}
	}
	if after := read(); !reflect.DeepEqual(after, before) {
		t.Errorf("the login scopes changed the user: %+v, was %+v", after, before)
	}

	// A later login still moves it forward.
	time.Sleep(10 * time.Millisecond)
	if _, err := svc.People.Login(ctx, email, password, netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if after := read(); after.LastLogin == nil || !after.LastLogin.After(*before.LastLogin) {
		t.Errorf("last login after a second login = %v, was %v", after.LastLogin, before.LastLogin)
	}
}
