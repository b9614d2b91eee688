package tenant_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
)

// openAs is a pool on the database at dbURL logged in as role, closed when
// the test ends (before the role is dropped).
func openAs(t *testing.T, dbURL, role string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", pgtest.URLAs(t, dbURL, role))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The service refuses to run as a role that could step around row-level
// security: a superuser, a BYPASSRLS role, the tables' owner, or a role that
// can become one of those.
func TestCheckRuntimeRoleRefusesUnsafeRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDB(t)
	admin, err := sqlx.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var superuser string
	if err := admin.Get(&superuser, "SELECT current_user"); err != nil {
		t.Fatal(err)
	}
	bypass := pgtest.NewRole(t, dbURL, "NOLOGIN BYPASSRLS")
	owner := pgtest.NewRole(t, dbURL, "NOLOGIN")
	tableOwner := pgtest.NewRole(t, dbURL, "LOGIN IN ROLE skiff_app")
	for _, q := range []string{"ALTER TABLE users OWNER TO " + owner, "ALTER TABLE accounts OWNER TO " + tableOwner} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name, role, reason string
	}{
		{"superuser", superuser, "is a superuser"},
		{"BYPASSRLS", pgtest.NewRole(t, dbURL, "LOGIN BYPASSRLS IN ROLE skiff_app"), "has BYPASSRLS"},
		{"table owner", tableOwner, "owns the table accounts"},
		{"member of a BYPASSRLS role", pgtest.NewRole(t, dbURL, "LOGIN IN ROLE skiff_app, "+bypass), "can become " + bypass + ", which has BYPASSRLS"},
		{"member of the owner", pgtest.NewRole(t, dbURL, "LOGIN IN ROLE skiff_app, "+owner), "can become " + owner + ", which owns the table users"},
	}
	for _, c := range cases {
		err := tenant.CheckRuntimeRole(ctx, openAs(t, dbURL, c.role))
		var re *tenant.RuntimeRoleError
		if !errors.As(err, &re) {
			t.Errorf("%s: got %v, want a RuntimeRoleError", c.name, err)
			continue
		}
		if re.Role != c.role || re.Reason != c.reason {
			t.Errorf("%s: role %q reason %q, want %q %q", c.name, re.Role, re.Reason, c.role, c.reason)
		}
		if !strings.Contains(err.Error(), "row-level security") {
			t.Errorf("%s: %q does not say what is at stake", c.name, err)
		}
	}
}

// A role that owns nothing, has no BYPASSRLS and may switch to skiff_app is
// accepted, and the service works through it.
func TestCheckRuntimeRoleAcceptsARuntimeRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDB(t)
	role := pgtest.NewRole(t, dbURL, "LOGIN IN ROLE skiff_app")
	if err := tenant.CheckRuntimeRole(ctx, openAs(t, dbURL, role)); err != nil {
		t.Fatal(err)
	}
	svc := domain.New(tenant.NewDB(openAs(t, dbURL, role)))
	if _, _, err := svc.Accounts.CreateAccount(tenant.SystemContext(ctx), account.CreateAccountInput{Name: "Acme", OwnerEmail: "o@acme.example", OwnerName: "O"}); err != nil {
		t.Fatalf("create an account as the runtime role: %v", err)
	}
}

// A role that cannot switch to skiff_app is told how to fix it, whatever
// else is true of it.
func TestCheckRuntimeRoleNeedsTheAppRole(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDB(t)
	role := pgtest.NewRole(t, dbURL, "LOGIN")
	err := tenant.CheckRuntimeRole(context.Background(), openAs(t, dbURL, role))
	var re *tenant.RuntimeRoleError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "GRANT skiff_app TO "+role) {
		t.Fatalf("got %v, want the GRANT that fixes it", err)
	}
}
