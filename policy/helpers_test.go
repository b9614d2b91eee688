package policy_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"

	"github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/policy"
)

func TestMain(m *testing.M) {
	tenant.UseCheapPasswordHashes() // what the tests check does not depend on the cost
	pgtest.Main(m)
}

// fixture is a test database written to directly, as the service's
// connection role: the rows the policy is derived from, without the tenant
// services' rules in the way.
type fixture struct {
	t   *testing.T
	url string
	db  *sql.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	url := pgtest.NewDB(t)
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{t: t, url: url, db: db}
}

// exec runs statements in one committed transaction, so triggers notify once.
func (f *fixture) exec(query string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(query, args...); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
}

func (f *fixture) id(query string, args ...any) string {
	f.t.Helper()
	var id string
	if err := f.db.QueryRow(query, args...).Scan(&id); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return id
}

// account creates an account; a trigger gives it its built-in groups.
func (f *fixture) account(name string) string {
	return f.id(`INSERT INTO accounts (name) VALUES ($1) RETURNING id`, name)
}

// group returns a built-in group's ID (PRO, ASSOCIATE, JAILED).
func (f *fixture) group(accountID, builtin string) string {
	return f.id(`SELECT id FROM groups WHERE account_id = $1 AND builtin = $2`, accountID, builtin)
}

func (f *fixture) customGroup(accountID, name string, perms ...policy.Permission) string {
	arr := make([]string, len(perms))
	for i, p := range perms {
		arr[i] = string(p)
	}
	return f.id(`INSERT INTO groups (account_id, name, permissions) VALUES ($1, $2, $3) RETURNING id`, accountID, name, pq.Array(arr))
}

// user creates a user with a role in a group ("" for the default group).
func (f *fixture) user(accountID, email, role, groupID string) string {
	return f.id(`INSERT INTO users (account_id, email, name, role, group_id) VALUES ($1, $2, $2, $3, nullif($4, '')::uuid) RETURNING id`,
		accountID, email, role, groupID)
}

func (f *fixture) folder(accountID, name, createdBy string) string {
	return f.id(`INSERT INTO project_folders (account_id, name, created_by) VALUES ($1, $2, $3) RETURNING id`, accountID, name, createdBy)
}

func (f *fixture) shareUser(accountID, folderID, userID string, preset policy.Preset) {
	f.exec(`INSERT INTO folder_shares (account_id, folder_id, user_id, preset) VALUES ($1, $2, $3, $4)
		ON CONFLICT (folder_id, user_id) WHERE user_id IS NOT NULL DO UPDATE SET preset = EXCLUDED.preset`, accountID, folderID, userID, preset)
}

func (f *fixture) shareGroup(accountID, folderID, groupID string, preset policy.Preset) {
	f.exec(`INSERT INTO folder_shares (account_id, folder_id, group_id, preset) VALUES ($1, $2, $3, $4)`, accountID, folderID, groupID, preset)
}

// enforcer returns an enforcer on its own connection pool, as another node would have.
func (f *fixture) enforcer(opts policy.Options) *policy.Enforcer {
	f.t.Helper()
	db, err := tenant.Open(context.Background(), f.url)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { db.Close() })
	e, err := policy.New(db, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// listen runs e.Listen until the test ends and waits until it is connected.
func (f *fixture) listen(e *policy.Enforcer) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Listen(ctx, f.url) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			f.t.Errorf("Listen returned %v; want context.Canceled", err)
		}
	})
	testkit.Eventually(f.t, "the enforcer to listen", e.Listening)
}

// may asks e and fails the test on an error.
func may(t *testing.T, e *policy.Enforcer, userID, accountID, object, action string) bool {
	t.Helper()
	ok, err := e.May(context.Background(), userID, accountID, object, action)
	if err != nil {
		t.Fatalf("May(%s, %s, %s): %v", userID, object, action, err)
	}
	return ok
}
