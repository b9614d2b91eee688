package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/internal/pgserver"
	"github.com/skiffhq/skiff/migrations"
	"github.com/skiffhq/skiff/tenant"
)

// DatabaseFlags say where the store of record is.
type DatabaseFlags struct {
	DatabaseURL string `name:"database-url" env:"SKIFF_DATABASE_URL" help:"PostgreSQL URL of the runtime role: not a superuser, no BYPASSRLS, owns no table (serve checks). Empty: start a private PostgreSQL server in the data folder from the machine's installed binaries."`
	MigrateURL  string `name:"migrate-database-url" env:"SKIFF_MIGRATE_DATABASE_URL" help:"PostgreSQL URL of the tables' owner, for migrations; defaults to --database-url (which serve then refuses, as it owns the tables)."`
	DataDir     string `name:"data-dir" default:"skiff-data" env:"SKIFF_DATA_DIR" type:"path" help:"Folder for the private PostgreSQL, users' files (unless --storage-dir) and mail written as files."`
}

// RuntimeDatabaseFlags are serve's own: the pool of connections it runs on,
// and whether it may run as a role that row-level security does not hold.
type RuntimeDatabaseFlags struct {
	MaxConns        int           `name:"database-max-connections" default:"32" env:"SKIFF_DATABASE_MAX_CONNECTIONS" help:"Most connections to PostgreSQL the process opens for requests and workers (plus one notification connection, which LISTENs for every channel); the GraphQL API holds at most three quarters of them, leaving the rest to SFTP and the workers."`
	MaxIdleConns    int           `name:"database-max-idle-connections" default:"32" env:"SKIFF_DATABASE_MAX_IDLE_CONNECTIONS" help:"Most idle connections kept open for the next requests (0 to --database-max-connections)."`
	MaxIdleTime     time.Duration `name:"database-connection-max-idle-time" default:"5m" env:"SKIFF_DATABASE_CONNECTION_MAX_IDLE_TIME" help:"Close a pooled connection idle this long, so the pool shrinks after a burst (0: never)."`
	MaxLifetime     time.Duration `name:"database-connection-max-lifetime" default:"1h" env:"SKIFF_DATABASE_CONNECTION_MAX_LIFETIME" help:"Close a pooled connection this old once it is idle, so connections move to a replaced or failed-over server (0: never)."`
	AllowUnsafeRole bool          `name:"allow-unsafe-database-role" env:"SKIFF_ALLOW_UNSAFE_DATABASE_ROLE" help:"Start even if the --database-url role is a superuser, has BYPASSRLS or owns the tables, so that row-level security would not keep tenants apart (development only; logs a warning)."`
}

// embeddedRuntimeRole is the role serve logs in as on the private
// PostgreSQL: like a production runtime role, it owns nothing and has no
// BYPASSRLS, so development runs under the same walls as production.
const embeddedRuntimeRole = "skiff_service"

// database is an open store with what it took to open it.
type database struct {
	DB         *tenant.DB
	URL        string // the runtime connection's URL
	MigrateURL string // the tables' owner's
	Embedded   bool
	// Notifications is serve's one LISTEN connection, on which every copy
	// of database state the node keeps hears its channel.
	Notifications *pglisten.Listener
	// Died is closed if the private PostgreSQL exits by itself; nil otherwise.
	Died <-chan struct{}
	stop func()
}

// Close closes the pool and stops the private PostgreSQL, whatever of them
// open got to.
func (d *database) Close() {
	if d.DB != nil {
		d.DB.Close()
	}
	if d.stop != nil {
		d.stop()
	}
}

// open connects to the configured database, or starts the private one when
// no URL is given, and migrates (mode auto) or checks (off, check) the
// schema: see schemaMode. Only the runtime URL is needed unless mode is
// auto; auto on an external database without --migrate-database-url
// migrates as the --database-url role. share says whether a private
// PostgreSQL that already runs on the data folder (serve's) may be used.
func (f DatabaseFlags) open(ctx context.Context, log *slog.Logger, mode, appName string, share bool) (*database, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	d := &database{URL: f.DatabaseURL, MigrateURL: f.MigrateURL}
	migrateAs := migrateURLSetting.with(d.MigrateURL)
	switch {
	case d.URL == "" && d.MigrateURL == "":
		if err := f.startPrivate(ctx, log, d, share); err != nil {
			return nil, err
		}
		migrateAs = migrateURLSetting.with(d.MigrateURL)
	case d.URL == "":
		return nil, settingError(runtimeURLSetting.flag, runtimeURLSetting.env, "not set, but --migrate-database-url is: give the runtime role's URL too (the migration URL alone is for `skiff migrate`), or neither for the private PostgreSQL")
	case d.MigrateURL == "":
		d.MigrateURL = d.URL
		migrateAs = runtimeURLSetting.with(d.URL)
	}
	err := func() error {
		if mode == migrateAuto {
			if err := migrateWith(ctx, migrateAs, appName+"-migrate", log); err != nil {
				return err
			}
			if d.Embedded {
				// The role needs skiff_app, which the first migration makes.
				if err := ensureRuntimeRole(ctx, d.MigrateURL, embeddedRuntimeRole); err != nil {
					return err
				}
			}
		}
		runtime := runtimeURLSetting.with(d.URL)
		// Every connection made with d.URL says who it is, the
		// notification listeners' included.
		d.URL = withAppName(d.URL, appName)
		db, err := tenant.Open(ctx, d.URL)
		if err != nil {
			return runtime.connectError(err)
		}
		d.DB = db
		return checkSchema(ctx, log, db.X.DB, mode)
	}()
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// check validates the URLs without connecting.
func (f DatabaseFlags) check() error {
	if err := runtimeURLSetting.with(f.DatabaseURL).check(); err != nil {
		return err
	}
	return migrateURLSetting.with(f.MigrateURL).check()
}

// startPrivate starts the private PostgreSQL in the data folder and points
// d at it: migrations run as its superuser, the service as
// embeddedRuntimeRole. If it already runs (a `skiff serve` on the same
// data folder), share says what to do: use it, without stopping it at the
// end (the admin commands, migrate up and status), or refuse (serve: two
// nodes on one private server would stop with the first; migrate down:
// it would drop what a running serve uses).
func (f DatabaseFlags) startPrivate(ctx context.Context, log *slog.Logger, d *database, share bool) error {
	pgData := filepath.Join(f.DataDir, "postgres")
	if port := runningPrivate(ctx, pgData); port != 0 {
		if !share {
			return fmt.Errorf("--data-dir (SKIFF_DATA_DIR) %s: its private PostgreSQL already runs (port %d), for another skiff process "+
				"on this data folder (a serve, or an admin or migrate command): stop that one first, or give this one another --data-dir", f.DataDir, port)
		}
		if err := ensureDatabase(ctx, privateURL(pgserver.Superuser, port, "postgres"), "skiff"); err != nil {
			return err
		}
		d.Embedded = true // d.stop stays nil: the server is not ours to stop
		d.URL, d.MigrateURL = privateURL(embeddedRuntimeRole, port, "skiff"), privateURL(pgserver.Superuser, port, "skiff")
		log.Info("private PostgreSQL already running (a skiff serve on this data folder); using it", "data", pgData, "port", port)
		return nil
	}
	// 0711: PostgreSQL may run as another user (when we are root) and
	// must be able to pass through to its own folder; nobody can list ours.
	if err := os.MkdirAll(f.DataDir, 0o711); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: pgData, Logger: log})
	if err != nil {
		if errors.Is(err, pgserver.ErrNotInstalled) {
			return err
		}
		return fmt.Errorf("start the private PostgreSQL (or set SKIFF_DATABASE_URL): %w", err)
	}
	d.Embedded, d.Died = true, srv.Done()
	d.stop = func() {
		if err := srv.Stop(); err != nil {
			log.Warn("stop PostgreSQL", "err", err)
		}
	}
	if err := ensureDatabase(ctx, srv.URL("postgres"), "skiff"); err != nil {
		d.stop()
		return err
	}
	d.URL, d.MigrateURL = srv.RoleURL(embeddedRuntimeRole, "skiff"), srv.URL("skiff")
	log.Info("private PostgreSQL running", "data", pgData, "port", srv.Port())
	return nil
}

// migrateWith applies the pending migrations as the role of s.
func migrateWith(ctx context.Context, s dbSetting, appName string, log *slog.Logger) error {
	db, err := sqlx.Open("postgres", withAppName(s.url, appName))
	if err != nil {
		return s.connectError(err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return s.connectError(err)
	}
	if err := migrations.Up(ctx, db.DB, log); err != nil {
		return migrationError(s, err)
	}
	return nil
}

// ensureDatabase creates database name on the private server if needed.
func ensureDatabase(ctx context.Context, adminURL, name string) error {
	db, err := sqlx.Open("postgres", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return fmt.Errorf("check database: %w", err)
	}
	if !exists {
		if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
	}
	return nil
}

// ensureRuntimeRole creates the login role role on the private server if
// needed, with nothing but the right to become tenant.AppRole.
func ensureRuntimeRole(ctx context.Context, adminURL, role string) error {
	db, err := sqlx.Open("postgres", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	q := pq.QuoteIdentifier(role)
	if _, err := db.ExecContext(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = `+pq.QuoteLiteral(role)+`) THEN
			CREATE ROLE `+q+` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
		END IF;
	END $$; GRANT `+pq.QuoteIdentifier(tenant.AppRole)+` TO `+q); err != nil {
		return fmt.Errorf("create the runtime role: %w", err)
	}
	return nil
}

// openServe opens the database for serve: its pool sized by the flags, and
// its role checked (see RuntimeDatabaseFlags).
func (c *ServeCmd) openServe(ctx context.Context, log *slog.Logger) (*database, error) {
	if err := c.Runtime.checkPool(); err != nil {
		return nil, err
	}
	mode, err := c.schemaMode()
	if err != nil {
		return nil, err
	}
	c.logStart(log, mode)
	d, err := c.open(ctx, log, mode, "skiff", false)
	if err != nil {
		return nil, err
	}
	d.DB.X.SetMaxOpenConns(c.Runtime.MaxConns)
	d.DB.X.SetMaxIdleConns(c.Runtime.MaxIdleConns)
	d.DB.X.SetConnMaxIdleTime(c.Runtime.MaxIdleTime)
	d.DB.X.SetConnMaxLifetime(c.Runtime.MaxLifetime)
	if err := c.Runtime.checkRole(ctx, log, d.DB); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// checkPool refuses pool sizes database/sql would read as "no limit" or
// silently change.
func (f RuntimeDatabaseFlags) checkPool() error {
	if f.MaxConns < 1 {
		return settingError("--database-max-connections", "SKIFF_DATABASE_MAX_CONNECTIONS", "%d is not 1 or more", f.MaxConns)
	}
	if f.MaxIdleConns < 0 || f.MaxIdleConns > f.MaxConns {
		return settingError("--database-max-idle-connections", "SKIFF_DATABASE_MAX_IDLE_CONNECTIONS", "%d is not between 0 and --database-max-connections (%d)", f.MaxIdleConns, f.MaxConns)
	}
	if f.MaxIdleTime < 0 {
		return settingError("--database-connection-max-idle-time", "SKIFF_DATABASE_CONNECTION_MAX_IDLE_TIME", "%s is negative (0: never)", f.MaxIdleTime)
	}
	if f.MaxLifetime < 0 {
		return settingError("--database-connection-max-lifetime", "SKIFF_DATABASE_CONNECTION_MAX_LIFETIME", "%s is negative (0: never)", f.MaxLifetime)
	}
	return nil
}

// checkRole refuses a runtime role that row-level security does not hold,
// unless --allow-unsafe-database-role says to run anyway.
func (f RuntimeDatabaseFlags) checkRole(ctx context.Context, log *slog.Logger, db *tenant.DB) error {
	err := tenant.CheckRuntimeRole(ctx, db.X)
	var unsafe *tenant.RuntimeRoleError
	if !errors.As(err, &unsafe) {
		return withCode(exitNoPerm, err)
	}
	if f.AllowUnsafeRole {
		log.Warn("UNSAFE DATABASE ROLE: "+unsafe.Error()+"; starting anyway because of --allow-unsafe-database-role, which is for development only",
			"role", unsafe.Role, "reason", unsafe.Reason)
		return nil
	}
	return withCode(exitNoPerm, fmt.Errorf("%w. Connect --database-url (SKIFF_DATABASE_URL) as a role that is not a superuser, has no BYPASSRLS and owns no table, "+
		"and give the tables' owner to --migrate-database-url (SKIFF_MIGRATE_DATABASE_URL) (docs/OPERATIONS.md), "+
		"or pass --allow-unsafe-database-role on a development machine", err))
}
