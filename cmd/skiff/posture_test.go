package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
)

// superuserOf is the role dbURL logs in as (pgtest's are superusers).
func superuserOf(t *testing.T, dbURL string) string {
	t.Helper()
	db, err := sqlx.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var role string
	if err := db.Get(&role, `SELECT current_user`); err != nil {
		t.Fatal(err)
	}
	return role
}

// serve refuses to start as a role that row-level security does not hold,
// in one line that names the role, says why and how to fix it.
func TestServeRefusesUnsafeDatabaseRole(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDB(t)
	owner := pgtest.NewRole(t, dbURL, "LOGIN IN ROLE skiff_app")
	admin, err := sqlx.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`ALTER TABLE accounts OWNER TO ` + owner); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ url, role, reason string }{
		{dbURL, superuserOf(t, dbURL), "is a superuser"},
		{pgtest.URLAs(t, dbURL, owner), owner, "owns the table accounts"},
	} {
		cmd := parseServe(t, "--database-url", c.url, "--migrate-database-url", dbURL, "--data-dir", t.TempDir(), "--smtp-url", "file://"+t.TempDir())
		err := cmd.Run(context.Background(), slog.New(slog.DiscardHandler))
		if err == nil {
			t.Fatalf("%s: serve started", c.role)
		}
		msg := err.Error()
		for _, want := range []string{"database role " + c.role + " " + c.reason, "SKIFF_DATABASE_URL", "--allow-unsafe-database-role"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q does not say %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%q is more than one line", msg)
		}
	}
}

// --allow-unsafe-database-role starts anyway and says so loudly; the pool
// has the size the flags give it.
func TestAllowUnsafeDatabaseRole(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDB(t)
	var logs syncBuffer
	cmd := parseServe(t, "--database-url", dbURL, "--allow-unsafe-database-role", "--database-max-connections=7", "--database-max-idle-connections=3")
	d, err := cmd.openServe(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !strings.Contains(logs.String(), "level=WARN msg=\"UNSAFE DATABASE ROLE: database role "+superuserOf(t, dbURL)+" is a superuser") {
		t.Errorf("no warning in the log:\n%s", logs.String())
	}
	if got := d.DB.X.Stats().MaxOpenConnections; got != 7 {
		t.Errorf("pool of %d connections, want 7", got)
	}
}

// With the tables' owner for migrations and a runtime role for the rest, as
// docs/OPERATIONS.md says, serve starts without complaint and works, and
// migrate reports the schema version (which only the owner may read).
func TestServeWithARuntimeRole(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDB(t)
	runtimeURL := pgtest.URLAs(t, dbURL, pgtest.NewRole(t, dbURL, "LOGIN IN ROLE skiff_app"))
	var logs syncBuffer
	d, err := parseServe(t, "--database-url", runtimeURL, "--migrate-database-url", dbURL).
		openServe(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if strings.Contains(logs.String(), "UNSAFE") {
		t.Errorf("a warning about a safe role:\n%s", logs.String())
	}

	s := startServe(t, newDataDir(t), func(c *ServeCmd) {
		c.DatabaseURL, c.MigrateURL = runtimeURL, dbURL
		c.Mail.SMTPURL = "file://" + t.TempDir()
	})
	res, err := http.Get(s.http + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s", res.Status)
	}
	migrate := &MigrateUpCmd{DatabaseFlags: DatabaseFlags{DatabaseURL: runtimeURL, MigrateURL: dbURL}}
	if err := migrate.Run(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("migrate: %v", err)
	}
}

// A database that cannot be reached is an error naming the setting, with
// its exit code, not a crash.
func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	migrate := &MigrateUpCmd{DatabaseFlags: DatabaseFlags{DatabaseURL: "postgres://skiff@127.0.0.1:1/skiff?sslmode=disable&connect_timeout=5"}}
	err := migrate.Run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "--database-url (SKIFF_DATABASE_URL)") || exitCode(err) != exitUnavailable {
		t.Errorf("got %v (exit %d), want the setting named and exit %d", err, exitCode(err), exitUnavailable)
	}
}

// The pool flags default to the pool tenant.Open made before they existed,
// and sizes database/sql would read as "no limit" or change are refused.
func TestDatabasePoolFlags(t *testing.T) {
	if f := parseServe(t).Runtime; f.MaxConns != 32 || f.MaxIdleConns != 32 || f.checkPool() != nil {
		t.Errorf("defaults: %+v", f)
	}
	for _, bad := range [][]string{
		{"--database-max-connections=0"},
		{"--database-max-connections=-1"},
		{"--database-max-idle-connections=-1"},
		{"--database-max-connections=8", "--database-max-idle-connections=9"},
		{"--database-connection-max-idle-time=-1s"},
		{"--database-connection-max-lifetime=-1m"},
	} {
		err := parseServe(t, bad...).Runtime.checkPool()
		flag, _, _ := strings.Cut(bad[len(bad)-1], "=")
		if err == nil || !strings.HasPrefix(err.Error(), flag) {
			t.Errorf("%v: got %v, want an error naming %s", bad, err, flag)
		}
	}
}
