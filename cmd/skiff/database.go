package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/pgserver"
	"github.com/skiffhq/skiff/migrations"
	"github.com/skiffhq/skiff/tenant"
)

// DatabaseFlags say where the store of record is.
type DatabaseFlags struct {
	DatabaseURL string `name:"database-url" env:"SKIFF_DATABASE_URL" help:"PostgreSQL URL. Empty: start a private PostgreSQL server in the data folder from the machine's installed binaries."`
	MigrateURL  string `name:"migrate-database-url" env:"SKIFF_MIGRATE_DATABASE_URL" help:"PostgreSQL URL of the tables' owner, for migrations; defaults to --database-url."`
	DataDir     string `name:"data-dir" default:"skiff-data" env:"SKIFF_DATA_DIR" type:"path" help:"Folder for the private PostgreSQL, users' files (unless --storage-dir) and mail written as files."`
}

// database is an open store with what it took to open it.
type database struct {
	DB       *tenant.DB
	URL      string // the runtime connection's URL
	Embedded bool
	// Died is closed if the private PostgreSQL exits by itself; nil otherwise.
	Died <-chan struct{}
	stop func()
}

func (d *database) Close() {
	d.DB.Close()
	if d.stop != nil {
		d.stop()
	}
}

// open connects to the configured database, or starts the private one, and
// applies migrations.
func (f DatabaseFlags) open(ctx context.Context, log *slog.Logger) (*database, error) {
	d := &database{}
	url, migrateURL := f.DatabaseURL, f.MigrateURL
	if url == "" {
		// 0711: PostgreSQL may run as another user (when we are root) and
		// must be able to pass through to its own folder; nobody can list ours.
		if err := os.MkdirAll(f.DataDir, 0o711); err != nil {
			return nil, fmt.Errorf("data folder: %w", err)
		}
		srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(f.DataDir, "postgres"), Logger: log})
		if err != nil {
			if errors.Is(err, pgserver.ErrNotInstalled) {
				return nil, err
			}
			return nil, fmt.Errorf("start the private PostgreSQL (or set SKIFF_DATABASE_URL): %w", err)
		}
		d.Embedded, d.Died = true, srv.Done()
		d.stop = func() {
			if err := srv.Stop(); err != nil {
				log.Warn("stop PostgreSQL", "err", err)
			}
		}
		if err := ensureDatabase(ctx, srv.URL("postgres"), "skiff"); err != nil {
			d.stop()
			return nil, err
		}
		url = srv.URL("skiff")
		log.Info("private PostgreSQL running", "data", filepath.Join(f.DataDir, "postgres"), "port", srv.Port())
	}
	if migrateURL == "" {
		migrateURL = url
	}
	if err := migrate(ctx, migrateURL, log); err != nil {
		d.Close()
		return nil, err
	}
	db, err := tenant.Open(ctx, url)
	if err != nil {
		if d.stop != nil {
			d.stop()
		}
		return nil, err
	}
	d.DB, d.URL = db, url
	return d, nil
}

func migrate(ctx context.Context, url string, log *slog.Logger) error {
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer db.Close()
	if err := migrations.Up(ctx, db.DB, log); err != nil {
		return fmt.Errorf("migrate: %w", err)
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

// MigrateCmd applies migrations.
type MigrateCmd struct {
	DatabaseFlags
}

// Run applies all migrations and reports the version.
func (c *MigrateCmd) Run(ctx context.Context, log *slog.Logger) error {
	d, err := c.open(ctx, log)
	if err != nil {
		return err
	}
	defer d.Close()
	cur, latest, err := migrations.Version(ctx, d.DB.X.DB)
	if err != nil {
		return err
	}
	fmt.Printf("database schema at version %d (latest %d)\n", cur, latest)
	return nil
}
