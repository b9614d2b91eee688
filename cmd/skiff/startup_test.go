package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/migrations"
)

// From an empty PostgreSQL to a serving node, as docs/OPERATIONS.md says,
// with every mistake an operator can make on the way answered by one line
// that names the setting and the cause, and a documented exit code.
func TestOperatorStartup(t *testing.T) {
	pg := startOperatorPG(t)
	down := "postgres://skiff_service:x@127.0.0.1:1/skiff?sslmode=disable"
	pg.exec(t,
		"CREATE ROLE skiff_owner LOGIN PASSWORD '"+opOwnerPassword+"'",
		"CREATE ROLE skiff_service LOGIN PASSWORD '"+opServicePassword+"' NOBYPASSRLS",
	)
	ownerURL, serviceURL := pg.newDatabase(t, "skiff")
	both := []string{"SKIFF_MIGRATE_DATABASE_URL=" + ownerURL, "SKIFF_DATABASE_URL=" + serviceURL}
	staff := []string{"admin", "create-staff", "--email=ops@example.com", "--name=Ops", "--password=a-long-password"}

	t.Run("owner without CREATEROLE and no skiff_app", func(t *testing.T) {
		r := runSkiff(t, both, "migrate")
		wantFailure(t, r, exitNoPerm, "--migrate-database-url (SKIFF_MIGRATE_DATABASE_URL)", "permission denied", "skiff_app", "CREATEROLE")
	})
	// The documented fix: skiff_app made beforehand.
	pg.exec(t, "DROP DATABASE skiff", "CREATE ROLE skiff_app NOLOGIN NOBYPASSRLS",
		"GRANT skiff_app TO skiff_owner", "GRANT skiff_app TO skiff_service")
	ownerURL, serviceURL = pg.newDatabase(t, "skiff")

	t.Run("invalid settings are refused before connecting", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"serve", "--database-url=postgres://u:p@127.0.0.1:1/%zz"}, []string{"--database-url (SKIFF_DATABASE_URL): not a valid URL"}},
			{[]string{"serve", "--database-url=nonsense"}, []string{"--database-url (SKIFF_DATABASE_URL): not a PostgreSQL URL"}},
			{[]string{"serve", "--database-url=postgres://u:p@127.0.0.1:1/skiff?sslmode=sometimes"}, []string{"--database-url (SKIFF_DATABASE_URL)", "sslmode"}},
			{[]string{"serve", "--database-url=" + down, "--migrate=sometimes"}, []string{"--migrate (SKIFF_MIGRATE)", "sometimes"}},
			{[]string{"serve", "--database-url=" + down, "--smtp-url=ftp://mail.example.com"}, []string{"--smtp-url (SKIFF_SMTP_URL)"}},
			{[]string{"serve", "--database-url=" + down, "--database-max-connections=0"}, []string{"--database-max-connections"}},
			{[]string{"serve", "--migrate-database-url=" + down}, []string{"--database-url (SKIFF_DATABASE_URL): not set"}},
			{[]string{"migrate", "--migrate-database-url=nonsense"}, []string{"--migrate-database-url (SKIFF_MIGRATE_DATABASE_URL)"}},
		} {
			wantFailure(t, runSkiff(t, nil, c.args...), exitConfig, c.want...)
		}
	})

	t.Run("database down", func(t *testing.T) {
		for _, args := range [][]string{{"serve", "--database-url=" + down}, {"migrate", "--migrate-database-url=" + down}, append([]string{"--database-url=" + down}, staff...)} {
			if args[0] == "--database-url="+down {
				args = append(staff, args[0])
			}
			wantFailure(t, runSkiff(t, nil, args...), exitUnavailable, "127.0.0.1:1", "cannot reach PostgreSQL", "connection refused")
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		bad := pg.url("skiff_service", "wrong-password", "skiff")
		for _, args := range [][]string{{"serve", "--database-url=" + bad}, {"migrate", "--migrate-database-url=" + bad}, append(append([]string{}, staff...), "--database-url="+bad)} {
			wantFailure(t, runSkiff(t, nil, args...), exitNoPerm, "PostgreSQL refused the login", "password authentication failed", "skiff_service")
		}
	})

	t.Run("no such database", func(t *testing.T) {
		wantFailure(t, runSkiff(t, nil, "serve", "--database-url="+pg.url("skiff_service", opServicePassword, "skiff_typo")), exitConfig,
			"--database-url (SKIFF_DATABASE_URL)", "skiff_typo", "does not exist")
	})

	t.Run("URL without sslmode on a server without SSL", func(t *testing.T) {
		noSSL := strings.TrimSuffix(serviceURL, "?sslmode=disable")
		wantFailure(t, runSkiff(t, nil, "serve", "--database-url="+noSSL), exitConfig, "--database-url (SKIFF_DATABASE_URL)", "sslmode=disable")
	})

	t.Run("runtime role alone on an unmigrated database", func(t *testing.T) {
		r := runSkiff(t, nil, "serve", "--database-url="+serviceURL)
		wantFailure(t, r, exitSchema, "older than this skiff", "skiff migrate")
		wantFailure(t, runSkiff(t, nil, append(staff, "--database-url="+serviceURL)...), exitSchema, "skiff migrate")
		// Asked to migrate with the runtime role's URL alone: it may not.
		wantFailure(t, runSkiff(t, nil, "serve", "--database-url="+serviceURL, "--migrate=auto"), exitNoPerm,
			"--database-url (SKIFF_DATABASE_URL)", "permission denied", "migrate as the tables' owner")
	})

	t.Run("the last line in the JSON log format", func(t *testing.T) {
		r := runSkiff(t, nil, "--log-format=json", "serve", "--database-url="+down)
		var line struct {
			Level, Msg string
			ExitCode   int `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(lastLine(r.stderr)), &line); err != nil || line.Level != "ERROR" || line.ExitCode != exitUnavailable || !strings.Contains(line.Msg, "cannot reach PostgreSQL") {
			t.Errorf("last line %q (%v), want a JSON error with exit_code %d", lastLine(r.stderr), err, exitUnavailable)
		}
		if r.code != exitUnavailable {
			t.Errorf("exit code %d", r.code)
		}
	})

	t.Run("version", func(t *testing.T) {
		r := runSkiff(t, nil, "version")
		if r.code != 0 || !regexp.MustCompile(fmt.Sprintf(`^skiff \S+ \(schema %d, go1\.\d+`, migrations.Latest())).MatchString(r.stdout) {
			t.Errorf("skiff version: exit %d, %q", r.code, r.stdout)
		}
	})

	t.Run("migrate as the owner", func(t *testing.T) {
		// Both URLs in the environment, as on a node: migrate uses the owner's only.
		r := runSkiff(t, both, "migrate")
		if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("database schema at version %d (this skiff knows up to %d)", migrations.Latest(), migrations.Latest())) {
			t.Fatalf("migrate: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		r = runSkiff(t, both, "migrate", "status")
		if r.code != 0 || !strings.Contains(r.stdout, "00075_schema_compat.sql") || strings.Contains(r.stdout, "pending") {
			t.Errorf("migrate status: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		// Only the migration URL: no private PostgreSQL (runSkiff checks).
		if r := runSkiff(t, both[:1], "migrate"); r.code != 0 {
			t.Errorf("migrate with the migration URL alone: exit %d\n%s", r.code, r.stderr)
		}
	})

	for _, mode := range []string{"off", "check", ""} {
		t.Run(fmt.Sprintf("serve on the runtime role alone, --migrate=%s", mode), func(t *testing.T) {
			args := []string{"--database-url=" + serviceURL}
			if mode != "" {
				args = append(args, "--migrate="+mode)
			}
			s := serveBinary(t, nil, args...)
			if st := s.readyz(t); st != http.StatusOK {
				t.Errorf("/readyz: %d", st)
			}
			log := s.stderr.String()
			for _, want := range []string{"msg=\"starting skiff\" version=", fmt.Sprintf("schema=%d", migrations.Latest()), "database_url=\"postgres://skiff_service:xxxxx@127.0.0.1:"} {
				if !strings.Contains(log, want) {
					t.Errorf("the start-up log does not say %q:\n%s", want, log)
				}
			}
		})
	}

	t.Run("admin on the runtime role alone", func(t *testing.T) {
		if r := runSkiff(t, nil, append(staff, "--database-url="+serviceURL)...); r.code != 0 {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("a newer schema", func(t *testing.T) {
		owner := pg.openAs(t, ownerURL)
		if _, err := owner.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`); err != nil {
			t.Fatal(err)
		}
		// Expand only (compatible_from untouched): this release keeps running, with a warning.
		s := serveBinary(t, nil, "--database-url="+serviceURL)
		if !strings.Contains(s.stderr.String(), "the database schema is newer than this skiff knows") {
			t.Errorf("no warning:\n%s", s.stderr.String())
		}
		// A contract migration marks it incompatible: refused, by every command that runs on it.
		if _, err := owner.Exec(`UPDATE skiff_schema SET compatible_from = 99999`); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"serve", "--database-url=" + serviceURL}, {"serve", "--database-url=" + serviceURL, "--migrate-database-url=" + ownerURL, "--migrate=auto"}, append(append([]string{}, staff...), "--database-url="+serviceURL)} {
			wantFailure(t, runSkiff(t, nil, args...), exitSchema, "needs a skiff that knows migration 99999", fmt.Sprintf("knows up to %d", migrations.Latest()))
		}
		wantFailure(t, runSkiff(t, both, "migrate", "down", "--to=60"), exitSchema, "newer than this skiff knows")
		if _, err := owner.Exec(`DELETE FROM goose_db_version WHERE version_id = 99999; UPDATE skiff_schema SET compatible_from = 0`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("migrate down and up again", func(t *testing.T) {
		r := runSkiff(t, both, "migrate", "down", "--to=60")
		if r.code != 0 || !strings.Contains(r.stdout, "database schema at version 60") {
			t.Fatalf("down: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if r := runSkiff(t, both, "migrate", "status"); !regexp.MustCompile(`00075_schema_compat\.sql\s+pending`).MatchString(r.stdout) {
			t.Errorf("status after down:\n%s", r.stdout)
		}
		wantFailure(t, runSkiff(t, nil, "serve", "--database-url="+serviceURL, "--migrate=check"), exitSchema, "a version before 00075", "skiff migrate")
		if r := runSkiff(t, both, "migrate"); r.code != 0 {
			t.Errorf("up again: exit %d\n%s", r.code, r.stderr)
		}
	})
}
