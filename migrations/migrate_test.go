package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// emptyDB is a database without any migration applied, dropped when t ends.
func emptyDB(t *testing.T) *sql.DB {
	t.Helper()
	// Any database of the test server will do to create another.
	u, err := url.Parse(pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	name := fmt.Sprintf("migrations_%d_%s", os.Getpid(), strings.ToLower(t.Name()))
	if _, err := admin.Exec("CREATE DATABASE " + pq.QuoteIdentifier(name)); err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		if _, err := admin.Exec("DROP DATABASE " + pq.QuoteIdentifier(name) + " WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	return db
}

// newestFile is the version of the newest migration file in this folder.
func newestFile(t *testing.T) int64 {
	t.Helper()
	files, err := filepath.Glob("*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files: %v", err)
	}
	var newest int64
	for _, f := range files {
		num, _, _ := strings.Cut(f, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			t.Fatalf("%s: not numbered", f)
		}
		newest = max(newest, v)
	}
	return newest
}

func TestUpAppliesEveryFileOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)

	before, err := migrations.Status(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range before {
		if m.Applied {
			t.Errorf("%s applied on an empty database", m.Name)
		}
	}

	if err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatalf("second Up: %v", err)
	}

	after, err := migrations.Status(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("status lists %d migrations, then %d", len(before), len(after))
	}
	for _, m := range after {
		if !m.Applied || m.AppliedAt.IsZero() {
			t.Errorf("%s not applied", m.Name)
		}
	}
	current, latest, err := migrations.Version(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if want := newestFile(t); current != want || latest != want {
		t.Errorf("version %d of %d, want %d (the newest file)", current, latest, want)
	}
	var runs int
	if err := db.QueryRow(`SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != len(after) {
		t.Errorf("%d migrations recorded %d times", len(after), runs)
	}
}

func TestUpCreatesTheAppRole(t *testing.T) {
	t.Parallel()
	db := pgtest.Open(t)
	var role struct {
		Login, Super, BypassRLS, CreateDB, CreateRole bool
	}
	err := db.QueryRow(`SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole
		FROM pg_roles WHERE rolname = 'skiff_app'`).Scan(&role.Login, &role.Super, &role.BypassRLS, &role.CreateDB, &role.CreateRole)
	if err != nil {
		t.Fatalf("role skiff_app: %v", err)
	}
	if role != (struct{ Login, Super, BypassRLS, CreateDB, CreateRole bool }{}) {
		t.Errorf("skiff_app has privileges it must not have: %+v", role)
	}
}

func TestConcurrentUpsBothSucceed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = migrations.Up(ctx, db, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Up %d: %v", i, err)
		}
	}
	current, latest, err := migrations.Version(ctx, db)
	if err != nil || current != latest {
		t.Errorf("after concurrent Ups: version %d of %d, %v", current, latest, err)
	}
}

func TestUpNamesTheFileThatFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)
	// A table in the way of the first migration.
	if _, err := db.Exec(`CREATE TABLE accounts (id int)`); err != nil {
		t.Fatal(err)
	}
	err := migrations.Up(ctx, db, nil)
	if err == nil {
		t.Fatal("Up succeeded over a conflicting table")
	}
	if !strings.Contains(err.Error(), "00001_foundation.sql failed") || !strings.Contains(err.Error(), `"accounts" already exists`) {
		t.Errorf("error does not say what failed: %v", err)
	}
	current, _, err := migrations.Version(ctx, db)
	if err != nil || current != 0 {
		t.Errorf("a failed migration left version %d, %v", current, err)
	}
}

func TestUpFailsOnUnreachableDatabase(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("postgres", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = migrations.Up(context.Background(), db, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "migrate database: ") {
		t.Errorf("got %v", err)
	}
}
