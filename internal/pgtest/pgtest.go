// Package pgtest gives each test its own migrated PostgreSQL database.
//
// Use it from a package's tests:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		db := pgtest.OpenStore(t) // or pgtest.NewDB(t) for a URL
//	}
//
// The first NewDB in a test binary starts a throwaway PostgreSQL server from
// the installed binaries (see internal/pgserver) in a temporary folder, and
// migrates a template database once; every NewDB then clones the template,
// which takes milliseconds. Main stops the server and removes the folder when
// the tests are done. `go test ./...` runs packages in separate processes,
// each with a server of its own. If SKIFF_TEST_DATABASE_URL is set, tests
// use that server (PostgreSQL 13 or later) instead: its user must be
// allowed to create databases and roles.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/pgserver"
	"github.com/skiffhq/skiff/migrations"
	"github.com/skiffhq/skiff/tenant"
)

// EnvURL names the variable that points tests at an existing server, e.g.
// postgres://postgres@localhost:5432/postgres?sslmode=disable.
const EnvURL = "SKIFF_TEST_DATABASE_URL"

const (
	dirPrefix = "skiff-pgtest-"
	// setupTimeout bounds starting the server and migrating the template.
	setupTimeout = 3 * time.Minute
	// templateLock serialises template migrations of test binaries sharing
	// one server: roles are per server, so two first migrations would race
	// to create them.
	templateLock = 0x736b696666 // "skiff"
)

var (
	mu         sync.Mutex
	mainCalled bool
	started    bool // setup has run; env and envErr hold its result
	env        *cluster
	envErr     error
)

// cluster is the server the test binary uses and its migrated template.
type cluster struct {
	base     *url.URL // a URL of the server; NewDB swaps the database name
	admin    *sql.DB  // on base's own database, to create and drop databases
	template string
	strategy string           // CREATE DATABASE option for clones
	server   *pgserver.Server // nil with SKIFF_TEST_DATABASE_URL
	tmpDir   string           // the server's folder, removed by Main
}

// Main runs the tests, then stops the server they used and removes its
// files, runs after (the package's other test servers' stops, in order),
// and exits. Call it from TestMain in every package that uses NewDB.
func Main(m *testing.M, after ...func()) {
	mu.Lock()
	mainCalled = true
	mu.Unlock()
	code := m.Run()
	for _, f := range after {
		f()
	}
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// NewDB creates an empty database with every migration applied, for t
// alone, and returns its URL. The connection is the server's superuser (the
// owner of the tables); every transaction of tenant.Open(ctx, url) still
// switches to skiff_app, so row-level security applies as in production.
// A test that needs production's runtime login role makes one with NewRole.
// The database is dropped when t ends, with any connection still open to it.
func NewDB(t testing.TB) string {
	t.Helper()
	c, err := get()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "skiff_test_" + randomHex()
	ctx := context.Background()
	if _, err := c.admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)+
		" TEMPLATE "+pq.QuoteIdentifier(c.template)+c.strategy); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := c.admin.ExecContext(ctx, "DROP DATABASE "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.url(name)
}

// Open is NewDB with a connection pool to the new database, closed when t
// ends.
func Open(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", NewDB(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func get() (*cluster, error) {
	mu.Lock()
	defer mu.Unlock()
	if !mainCalled {
		return nil, errors.New("call pgtest.Main(m) from this package's TestMain, " +
			"so the test database server is stopped when the tests end")
	}
	if !started {
		started = true
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		env, envErr = setup(ctx)
	}
	if env == nil && envErr == nil {
		return nil, errors.New("the test database server has already been stopped by pgtest.Main")
	}
	return env, envErr
}

func setup(ctx context.Context) (_ *cluster, err error) {
	c := &cluster{template: "skiff_template_" + randomHex()}
	defer func() {
		if err != nil {
			_ = c.close()
		}
	}()
	if raw := os.Getenv(EnvURL); raw != "" {
		if c.base, err = url.Parse(raw); err != nil || (c.base.Scheme != "postgres" && c.base.Scheme != "postgresql") {
			return nil, fmt.Errorf("%s must be a postgres:// URL", EnvURL)
		}
	} else {
		if err := c.startServer(ctx); err != nil {
			return nil, err
		}
	}
	if c.admin, err = sql.Open("postgres", c.base.String()); err != nil {
		return nil, err
	}
	if err := c.admin.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("connect to test database server: %w", err)
	}
	var version int
	if err := c.admin.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, fmt.Errorf("test database server version: %w", err)
	}
	if version >= 150000 {
		// Since 15, CREATE DATABASE logs every block of the copy by default;
		// copying the files is several times faster for a small template.
		c.strategy = " STRATEGY = FILE_COPY"
	}
	if err := c.migrateTemplate(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cluster) startServer(ctx context.Context) error {
	dir, err := makeTempDir()
	if err != nil {
		return err
	}
	c.tmpDir = dir
	// The server may run as another user (when tests run as root); it must
	// be able to enter the folder that holds its data directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	c.server, err = pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dir, "data"), Ephemeral: true})
	if err != nil {
		if errors.Is(err, pgserver.ErrNotInstalled) {
			return fmt.Errorf("%w, or point %s at a server for tests", err, EnvURL)
		}
		return err
	}
	base, err := url.Parse(c.server.URL("postgres"))
	if err != nil {
		return err
	}
	c.base = base
	return nil
}

// migrateTemplate builds the template that NewDB clones.
func (c *cluster) migrateTemplate(ctx context.Context) error {
	conn, err := c.admin.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		return fmt.Errorf("lock template creation: %w", err)
	}
	// Closing the connection would release the lock too; unlocking keeps the
	// pool's connection usable.
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLock)

	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(c.template)); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	db, err := sql.Open("postgres", c.url(c.template))
	if err != nil {
		return err
	}
	// No connection may stay open to a template while it is cloned.
	defer db.Close()
	if err := migrations.Up(ctx, db, slog.New(slog.DiscardHandler)); err != nil {
		return fmt.Errorf("migrate template database: %w", err)
	}
	return db.Close()
}

func (c *cluster) url(dbname string) string {
	u := *c.base
	u.Path = "/" + dbname
	return u.String()
}

// close drops the template of a shared server, stops our own server and
// removes its files.
func (c *cluster) close() error {
	var errs []error
	if c.admin != nil {
		if c.server == nil && c.base != nil {
			if _, err := c.admin.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(c.template) + " WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop template: %w", err))
			}
		}
		_ = c.admin.Close()
	}
	if c.server != nil {
		errs = append(errs, c.server.Stop())
	}
	if c.tmpDir != "" {
		errs = append(errs, os.RemoveAll(c.tmpDir))
	}
	return errors.Join(errs...)
}

func shutdown() error {
	mu.Lock()
	defer mu.Unlock()
	if env == nil {
		return nil
	}
	err := env.close()
	env = nil
	return err
}

// makeTempDir makes the folder for the server, in RAM if possible. The
// process id in its name lets a later run remove the folder if this process
// dies before Main cleans up.
func makeTempDir() (string, error) {
	pattern := dirPrefix + strconv.Itoa(os.Getpid()) + "-"
	if ram := ramDir(); ram != "" {
		removeAbandoned(ram)
		if dir, err := os.MkdirTemp(ram, pattern); err == nil {
			return dir, nil
		}
	}
	removeAbandoned(os.TempDir())
	return os.MkdirTemp("", pattern)
}

// removeAbandoned deletes the folders of test binaries that died before
// their Main could clean up (killed, or timed out). Their servers are gone
// too: on Linux they stop when their parent dies, and elsewhere PostgreSQL
// shuts down once it notices its data directory is gone.
func removeAbandoned(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), dirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(parent, e.Name()))
	}
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// processAlive errs on the side of "alive": a folder is removed only when
// its process is certainly gone.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return !errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

// OpenStore returns Skiff's store of record on a new migrated database
// (NewDB), closed when the test ends.
func OpenStore(t testing.TB) *tenant.DB {
	t.Helper()
	db, err := tenant.Open(context.Background(), NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PrivateServer starts a PostgreSQL server of the test's own on a fresh data
// directory, for tests that stop it and start it again (StartServer with
// the returned options and Port set to the server's keeps its address). It
// is stopped and removed when the test ends; without the server programs
// the test is skipped.
func PrivateServer(t testing.TB) (*pgserver.Server, pgserver.Options) {
	t.Helper()
	// The server may run as another user (when tests run as root): it must
	// be able to enter the folder that holds its data directory.
	parent, err := os.MkdirTemp("", "skiff-private-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	opts := pgserver.Options{DataDir: filepath.Join(parent, "data"), Ephemeral: true}
	return StartServer(t, opts), opts
}

// StartServer starts a server with opts, stopped when the test ends.
func StartServer(t testing.TB, opts pgserver.Options) *pgserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := pgserver.Start(ctx, opts)
	if errors.Is(err, pgserver.ErrNotInstalled) {
		t.Skip("needs the PostgreSQL server programs:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}
