package pgserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNotInstalled means no PostgreSQL server programs were found.
var ErrNotInstalled = errors.New("PostgreSQL server programs (initdb, postgres) not found: " +
	"install PostgreSQL (apt-get install postgresql; on macOS brew install postgresql@17; " +
	"on FreeBSD pkg install postgresql17-server) or set SKIFF_DATABASE_URL")

// installDirs are where packagers put the server programs off PATH. Each *
// is a version; a pattern that matches nothing on this system costs a stat.
var installDirs = []string{
	"/usr/lib/postgresql/*/bin",                          // Debian, Ubuntu
	"/usr/pgsql-*/bin",                                   // RHEL, Fedora (PGDG packages)
	"/opt/homebrew/opt/postgresql@*/bin",                 // Homebrew on Apple silicon (keg-only formulae)
	"/usr/local/opt/postgresql@*/bin",                    // Homebrew on Intel Macs
	"/Applications/Postgres.app/Contents/Versions/*/bin", // Postgres.app
	"/opt/local/lib/postgresql*/bin",                     // MacPorts
	"/usr/local/bin",                                     // FreeBSD packages, for a PATH without it
}

// Binaries is one installation of the PostgreSQL server programs.
type Binaries struct {
	Dir   string // the folder holding initdb and postgres (symbolic links resolved)
	Major int    // major version, e.g. 15
}

func (b Binaries) initdb() string   { return filepath.Join(b.Dir, "initdb") }
func (b Binaries) postgres() string { return filepath.Join(b.Dir, "postgres") }

// FindBinaries looks for initdb and postgres on PATH, then in the usual
// installation folders, newest version first. It returns an error wrapping
// ErrNotInstalled if there are none.
func FindBinaries() (Binaries, error) {
	return findBinaries(os.Getenv("PATH"), installDirs, 0)
}

// findBinaries returns the first installation found on pathList (PATH
// syntax) or in the globs, or, if major is not 0, the first of that version.
func findBinaries(pathList string, globs []string, major int) (Binaries, error) {
	var found []Binaries
	seen := map[string]bool{}
	consider := func(dir string) {
		b, ok := probe(dir)
		if ok && !seen[b.Dir] {
			seen[b.Dir] = true
			found = append(found, b)
		}
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir != "" {
			consider(dir)
		}
	}
	for _, g := range globs {
		dirs, _ := filepath.Glob(g) // the patterns are constants; Glob fails only on bad patterns
		var installs []Binaries
		for _, dir := range dirs {
			if b, ok := probe(dir); ok {
				installs = append(installs, b)
			}
		}
		slices.SortStableFunc(installs, func(a, b Binaries) int { return cmp.Compare(b.Major, a.Major) })
		for _, b := range installs {
			if !seen[b.Dir] {
				seen[b.Dir] = true
				found = append(found, b)
			}
		}
	}
	if len(found) == 0 {
		return Binaries{}, ErrNotInstalled
	}
	if major == 0 {
		return found[0], nil
	}
	var versions []string
	for _, b := range found {
		if b.Major == major {
			return b, nil
		}
		versions = append(versions, strconv.Itoa(b.Major))
	}
	return Binaries{}, fmt.Errorf("%w for version %d (found version %s): install PostgreSQL %d, "+
		"or upgrade the data directory with pg_upgrade", ErrNotInstalled, major, strings.Join(versions, ", "), major)
}

// probe reports whether dir holds a working initdb and postgres. initdb runs
// the postgres next to its real location, so symbolic links are resolved.
func probe(dir string) (Binaries, bool) {
	initdb, err := filepath.EvalSymlinks(filepath.Join(dir, "initdb"))
	if err != nil || !isExecutable(initdb) {
		return Binaries{}, false
	}
	b := Binaries{Dir: filepath.Dir(initdb)}
	if !isExecutable(b.postgres()) {
		return Binaries{}, false
	}
	major, err := serverMajor(b.postgres())
	if err != nil {
		return Binaries{}, false
	}
	b.Major = major
	return b, true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// serverMajor asks postgres for its version: "postgres (PostgreSQL) 15.18 (Debian ...)".
func serverMajor(postgres string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postgres, "--version").Output()
	if err != nil {
		return 0, err
	}
	return parseMajor(string(out))
}

func parseMajor(version string) (int, error) {
	_, rest, ok := strings.Cut(version, "(PostgreSQL) ")
	if !ok {
		return 0, fmt.Errorf("unexpected version %q", version)
	}
	// The major version is the leading number: "15.18", "17devel", "16beta1".
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	major, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0, fmt.Errorf("unexpected version %q", version)
	}
	return major, nil
}
