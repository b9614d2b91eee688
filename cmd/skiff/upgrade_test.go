package main

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/pgserver"
)

// previousRelease is the commit of the release before this code: the
// binary a rolling upgrade runs side by side with this one
// (docs/OPERATIONS.md, "Upgrades"). Move it to the last release's commit at
// each release. Until the first tagged release it is the last commit of
// main before serve checked the schema's version (schema 60).
const previousRelease = "ce7ee65de41d5b15214030302121849f4257edaa"

// buildPreviousRelease builds previousRelease's skiff from this repository's
// history, or skips when the history is not there.
func buildPreviousRelease(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds another release of skiff; not with -short")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git: cannot build the previous release")
	}
	if out, err := exec.Command("git", "cat-file", "-e", previousRelease+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("the previous release's commit %s is not in this checkout (a shallow clone or an archive?): %s", previousRelease[:12], strings.TrimSpace(string(out)))
	}
	src := t.TempDir()
	archive := exec.Command("sh", "-c", `cd "$(git rev-parse --show-toplevel)" && git archive --format=tar "$1" | tar -x -C "$2"`, "sh", previousRelease, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", previousRelease, err, out)
	}
	bin := filepath.Join(t.TempDir(), "skiff-previous")
	build := exec.Command("go", "build", "-o", bin, "./cmd/skiff")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release: %v\n%s", err, out)
	}
	return bin
}

// A rolling upgrade: the database migrated by this code, the previous
// release still serves on it, side by side with this one.
func TestPreviousReleaseServesOnTheNewSchema(t *testing.T) {
	old := buildPreviousRelease(t)
	pg := startOperatorPG(t)
	ownerURL, serviceURL := pg.acmeInstance(t)
	both := []string{"SKIFF_MIGRATE_DATABASE_URL=" + ownerURL, "SKIFF_DATABASE_URL=" + serviceURL}

	// The previous release as it was documented: both URLs (it migrates at
	// every start, which finds nothing to do).
	prev := serveBinaryAt(t, old, both)
	cur := serveBinary(t, nil, "--database-url="+serviceURL)
	for name, s := range map[string]*served{"previous": prev, "current": cur} {
		if st := s.readyz(t); st != http.StatusOK {
			t.Errorf("%s release: /readyz %d", name, st)
		}
		(&server{http: s.http}).login(t, "boss@acme.example", acmePassword)
	}
}

// documentedRoles runs docker/postgres-roles.sql, the roles and database of
// docs/OPERATIONS.md ("Database"), with psql as the superuser, and returns
// the owner's and the runtime role's URLs of the database skiff.
func (p *operatorPG) documentedRoles(t *testing.T) (ownerURL, serviceURL string) {
	t.Helper()
	bins, err := pgserver.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	psql := exec.Command(filepath.Join(bins.Dir, "psql"), "--no-psqlrc", "--set=ON_ERROR_STOP=1", "--quiet",
		"--dbname="+p.url(pgserver.Superuser, opSuperPassword, "postgres"), "--file="+filepath.Join("..", "..", "docker", "postgres-roles.sql"))
	psql.Env = append(cleanEnv(), "SKIFF_OWNER_PASSWORD="+opOwnerPassword, "SKIFF_SERVICE_PASSWORD="+opServicePassword, "SKIFF_BACKUP_PASSWORD="+opBackupPassword)
	if out, err := psql.CombinedOutput(); err != nil {
		t.Fatalf("psql -f docker/postgres-roles.sql: %v\n%s", err, out)
	}
	return p.url("skiff_owner", opOwnerPassword, "skiff"), p.url("skiff_service", opServicePassword, "skiff")
}

// acmePassword is the password of acmeInstance's owner, boss@acme.example.
const acmePassword = "a-long-password"

// acmeInstance is the database skiff made as docs/OPERATIONS.md says: the
// roles, `skiff migrate`, and an account made with `skiff admin
// create-account` whose owner is boss@acme.example.
func (p *operatorPG) acmeInstance(t *testing.T) (ownerURL, serviceURL string) {
	t.Helper()
	ownerURL, serviceURL = p.documentedRoles(t)
	if r := runSkiff(t, []string{"SKIFF_MIGRATE_DATABASE_URL=" + ownerURL}, "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.stderr)
	}
	if r := runSkiff(t, nil, "admin", "create-account", "--database-url="+serviceURL, "--name=Acme",
		"--owner-email=boss@acme.example", "--owner-name=Boss", "--owner-password="+acmePassword); r.code != 0 {
		t.Fatalf("create-account: exit %d\n%s", r.code, r.stderr)
	}
	return ownerURL, serviceURL
}
