package pgtest

import (
	"database/sql"
	"net/url"
	"testing"

	"github.com/lib/pq"
)

// rolePassword is the password of every role NewRole makes, for servers
// (SKIFF_TEST_DATABASE_URL) that do not trust local connections.
const rolePassword = "skiff-test-role"

// NewRole creates a role with the given CREATE ROLE options (for example
// "LOGIN IN ROLE skiff_app", "NOLOGIN BYPASSRLS") for t alone, and returns
// its name. Roles belong to the whole server, so the name is random. When t
// ends, whatever the role owns in dbURL's database (from NewDB) goes to the
// superuser and the role is dropped.
func NewRole(t testing.TB, dbURL, options string) string {
	t.Helper()
	admin, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "skiff_test_role_" + randomHex()
	if _, err := admin.Exec("CREATE ROLE " + pq.QuoteIdentifier(name) + " PASSWORD " + pq.QuoteLiteral(rolePassword) + " " + options); err != nil {
		admin.Close()
		t.Fatalf("pgtest: create role: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		q := pq.QuoteIdentifier(name)
		for _, stmt := range []string{"REASSIGN OWNED BY " + q + " TO CURRENT_USER", "DROP OWNED BY " + q, "DROP ROLE " + q} {
			if _, err := admin.Exec(stmt); err != nil {
				t.Errorf("pgtest: %s: %v", stmt, err)
				return
			}
		}
	})
	return name
}

// URLAs is dbURL logging in as role, a role from NewRole.
func URLAs(t testing.TB, dbURL, role string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.User = url.UserPassword(role, rolePassword)
	return u.String()
}
