package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/lib/pq"

	"github.com/skiffhq/skiff/migrations"
)

// Schema modes of serve's --migrate (docs/OPERATIONS.md, "Upgrades").
const (
	migrateAuto  = "auto"  // apply pending migrations, then check
	migrateOff   = "off"   // do not migrate; warn on an older schema
	migrateCheck = "check" // do not migrate; refuse an older schema
)

// MigrateFlags is serve's --migrate.
type MigrateFlags struct {
	Mode string `name:"migrate" env:"SKIFF_MIGRATE" placeholder:"auto|off|check" help:"Whether serve migrates the schema: auto applies pending migrations (needs the tables' owner), off runs on the schema as it is (warning if older), check refuses an older one. Default: auto with the private PostgreSQL or --migrate-database-url, check with --database-url alone (a cluster node, migrated by skiff migrate). Every mode refuses a schema that a newer release marked incompatible."`
}

// schemaMode resolves --migrate, its default included.
func (c *ServeCmd) schemaMode() (string, error) {
	switch c.Migrate.Mode {
	case migrateAuto, migrateOff, migrateCheck:
		return c.Migrate.Mode, nil
	case "":
		if c.DatabaseURL != "" && c.MigrateURL == "" && !c.Runtime.AllowUnsafeRole {
			return migrateCheck, nil
		}
		return migrateAuto, nil
	}
	return "", settingError("--migrate", "SKIFF_MIGRATE", "%q is not auto, off or check", c.Migrate.Mode)
}

// checkSchema compares the database's schema with the migrations this
// binary knows: a schema marked incompatible with it (a newer release's
// contract migration) is refused in every mode; an older one is refused in
// check mode and logged as a warning otherwise.
func checkSchema(ctx context.Context, log *slog.Logger, db *sql.DB, mode string) error {
	latest := migrations.Latest()
	s, err := migrations.ReadSchema(ctx, db)
	older := func(at string) error {
		msg := fmt.Sprintf("the database schema is at %s, older than this skiff (%s) needs (%d): run `skiff migrate` as the tables' owner first (docs/OPERATIONS.md, \"Upgrades\")", at, skiffVersion(), latest)
		if mode == migrateCheck {
			return &exitError{exitSchema, errors.New(msg + ", or start with --migrate=auto")}
		}
		log.Warn(msg+"; running on it because of --migrate="+mode, "schema", at, "known", latest)
		return nil
	}
	switch {
	case errors.Is(err, migrations.ErrSchemaUnreadable):
		return older("a version before 00075")
	case err != nil:
		return runtimeURLSetting.connectError(err)
	case s.Current < latest:
		return older(fmt.Sprint(s.Current))
	case s.CompatibleFrom > latest:
		return &exitError{exitSchema, fmt.Errorf("the database schema is at version %d, which needs a skiff that knows migration %d; this skiff (%s) knows up to %d: run the newer release (docs/OPERATIONS.md, \"Upgrades\")", s.Current, s.CompatibleFrom, skiffVersion(), latest)}
	case s.Current > latest:
		log.Warn("the database schema is newer than this skiff knows; its newer migrations keep this release working (expand only), so it runs: finish the upgrade", "schema", s.Current, "known", latest, "compatible_from", s.CompatibleFrom)
	}
	return nil
}

// migrationError is a failed migration as one line with its exit code: a
// missing right (typically CREATEROLE for skiff_app) says what to do.
func migrationError(s dbSetting, err error) error {
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "42501" {
		return &exitError{exitNoPerm, fmt.Errorf("%s (%s): %v: migrate as the tables' owner; if the failure is about creating a role, create skiff_app beforehand or give the owner CREATEROLE (docs/OPERATIONS.md, \"Database\")", s.flag, s.env, err)}
	}
	return &exitError{exitSchema, fmt.Errorf("%s (%s): %w", s.flag, s.env, err)}
}

// MigrateCmd changes the schema, as the tables' owner only: it connects with
// --migrate-database-url (or, without it, --database-url) and nothing else,
// and starts the private PostgreSQL only when neither is set.
type MigrateCmd struct {
	Up     MigrateUpCmd     `cmd:"" default:"withargs" help:"Apply every pending migration (the default)."`
	Status MigrateStatusCmd `cmd:"" help:"List the migrations this skiff knows and which the database has applied."`
	Down   MigrateDownCmd   `cmd:"" help:"Roll the schema back to a version, newest migration first (drops what those migrations added, data included)."`
}

// MigrateUpCmd applies migrations.
type MigrateUpCmd struct {
	DatabaseFlags
}

// MigrateStatusCmd shows the schema's state.
type MigrateStatusCmd struct {
	DatabaseFlags
}

// MigrateDownCmd rolls migrations back.
type MigrateDownCmd struct {
	DatabaseFlags
	To int64 `name:"to" required:"" help:"The version to roll back to (0 undoes everything)."`
}

// ownerDB connects as the migration role, starting the private PostgreSQL
// when no URL is set, or using the one a running serve started when share
// (startPrivate).
func (f DatabaseFlags) ownerDB(ctx context.Context, log *slog.Logger, share bool) (*sql.DB, dbSetting, func(), error) {
	if err := f.check(); err != nil {
		return nil, dbSetting{}, nil, err
	}
	s := migrateURLSetting.with(f.MigrateURL)
	stop := func() {}
	switch {
	case f.MigrateURL != "":
	case f.DatabaseURL != "":
		s = runtimeURLSetting.with(f.DatabaseURL)
	default:
		d := &database{}
		if err := f.startPrivate(ctx, log, d, share); err != nil {
			return nil, s, nil, err
		}
		s.url, stop = d.MigrateURL, d.Close
	}
	db, err := sql.Open("postgres", withAppName(s.url, "skiff-migrate"))
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		stop()
		return nil, s, nil, s.connectError(err)
	}
	return db, s, func() { db.Close(); stop() }, nil
}

// Run applies the pending migrations and reports the version.
func (c *MigrateUpCmd) Run(ctx context.Context, log *slog.Logger) error {
	db, s, done, err := c.ownerDB(ctx, log, true)
	if err != nil {
		return err
	}
	defer done()
	if err := migrations.Up(ctx, db, log); err != nil {
		return migrationError(s, err)
	}
	return printVersion(ctx, db, s)
}

func printVersion(ctx context.Context, db *sql.DB, s dbSetting) error {
	cur, latest, err := migrations.Version(ctx, db)
	if err != nil {
		return s.connectError(err)
	}
	fmt.Printf("database schema at version %d (this skiff knows up to %d)\n", cur, latest)
	return nil
}

// Run lists the migrations.
func (c *MigrateStatusCmd) Run(ctx context.Context, log *slog.Logger) error {
	db, s, done, err := c.ownerDB(ctx, log, true)
	if err != nil {
		return err
	}
	defer done()
	list, err := migrations.Status(ctx, db)
	if err != nil {
		return s.connectError(err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tFILE\tAPPLIED")
	for _, m := range list {
		at := "pending"
		if m.Applied {
			at = m.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(w, "%d\t%s\t%s\n", m.Version, m.Name, at)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return printVersion(ctx, db, s)
}

// Run rolls back.
func (c *MigrateDownCmd) Run(ctx context.Context, log *slog.Logger) error {
	if c.To < 0 {
		return withCode(exitConfig, fmt.Errorf("--to: %d is negative (0 undoes every migration)", c.To))
	}
	db, s, done, err := c.ownerDB(ctx, log, false)
	if err != nil {
		return err
	}
	defer done()
	cur, latest, err := migrations.Version(ctx, db)
	if err != nil {
		return s.connectError(err)
	}
	if cur > latest {
		return &exitError{exitSchema, fmt.Errorf("the database schema is at version %d, newer than this skiff knows (%d): roll back with the release that applied it", cur, latest)}
	}
	if c.To > cur {
		return withCode(exitConfig, fmt.Errorf("--to: %d is above the database schema's version, %d: down only rolls back (to apply migrations, run `skiff migrate`)", c.To, cur))
	}
	if err := migrations.DownTo(ctx, db, c.To, log); err != nil {
		return migrationError(s, err)
	}
	return printVersion(ctx, db, s)
}
