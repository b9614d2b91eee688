// Package migrations holds Skiff's numbered SQL migrations, embedded in the
// binary, and applies them with goose.
//
// Files are named NNNNN_what.sql and use goose annotations
// (-- +goose Up / -- +goose Down). Every *.sql file in this folder is picked up.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// Up waits up to five minutes for another process that is migrating the same
// database, probing once a second. Migrations are small; a longer wait means
// the other process is stuck.
const (
	lockProbeSeconds = 1
	lockProbes       = 300
)

// Migration is one migration file and whether the database has applied it.
type Migration struct {
	Version   int64
	Name      string    // file name, e.g. 00001_foundation.sql
	Applied   bool      // false: pending
	AppliedAt time.Time // zero when pending
}

// Up applies every pending migration in order, each in its own transaction
// unless the file says otherwise. It is safe to call from several processes
// at once: a PostgreSQL advisory lock makes them take turns, and the later
// ones find nothing left to do. log may be nil; applied migrations are logged
// at info level.
//
// If a migration fails, the ones before it stay applied and the error names
// the file that failed.
func Up(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := newProvider(db, log)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	return report(ctx, log, "applied migration", "migrate database", results, err)
}

// report logs each migration that ran as what, and turns err into one that
// names the file that failed.
func report(ctx context.Context, log *slog.Logger, what, action string, results []*goose.MigrationResult, err error) error {
	var pe *goose.PartialError
	if errors.As(err, &pe) {
		results = append(results, pe.Applied...)
	}
	for _, r := range results {
		log.InfoContext(ctx, what, "file", path.Base(r.Source.Path), "duration", r.Duration)
	}
	switch {
	case pe != nil:
		return fmt.Errorf("%s: %s failed: %w", action, path.Base(pe.Failed.Source.Path), pe.Err)
	case err != nil:
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}

// Status lists every embedded migration, oldest first, with whether the
// database has applied it.
func Status(ctx context.Context, db *sql.DB) ([]Migration, error) {
	p, err := newProvider(db, nil)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read migration status: %w", err)
	}
	out := make([]Migration, 0, len(st))
	for _, s := range st {
		out = append(out, Migration{
			Version:   s.Source.Version,
			Name:      path.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Version reports the newest migration the database has applied (0 for a
// fresh database) and the newest one embedded in this binary.
func Version(ctx context.Context, db *sql.DB) (current, latest int64, err error) {
	p, err := newProvider(db, nil)
	if err != nil {
		return 0, 0, err
	}
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	return current, latest, nil
}

func newProvider(db *sql.DB, log *slog.Logger) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(lockProbeSeconds, lockProbes))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithSessionLocker(locker),
		// Only the embedded SQL files count; nothing registered elsewhere in the
		// binary may sneak in.
		goose.WithDisableGlobalRegistry(true),
		// goose logs every statement when verbose; Up logs results itself.
		goose.WithSlog(log),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// DownTo rolls the database back to version (0: undo everything), running
// the Down section of each applied migration newer than it, newest first.
// Down sections drop what their Up made, data included; a database newer
// than this binary cannot be rolled back by it (it lacks those files).
func DownTo(ctx context.Context, db *sql.DB, version int64, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := newProvider(db, log)
	if err != nil {
		return err
	}
	results, err := p.DownTo(ctx, version)
	return report(ctx, log, "rolled back migration", "roll back database", results, err)
}

// Latest is the newest migration embedded in this binary.
func Latest() int64 {
	entries, _ := files.ReadDir(".")
	var latest int64
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil {
			latest = max(latest, v)
		}
	}
	return latest
}

// Schema is what a database's schema says about the binaries that may run
// on it (00075_schema_compat.sql).
type Schema struct {
	// Current is the newest migration applied (0: none).
	Current int64
	// CompatibleFrom is the newest migration a binary must know to run on
	// this schema; 0 when the schema predates 00075 or no migration raised it.
	CompatibleFrom int64
}

// ReadSchema reads the schema's version and compatibility. It needs only the
// runtime role's rights (from 00075 on); on an older schema, whose version
// table the runtime role may not read, ErrSchemaUnreadable.
func ReadSchema(ctx context.Context, db *sql.DB) (Schema, error) {
	var s Schema
	var versions, compat sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('goose_db_version')::text, to_regclass('skiff_schema')::text`).Scan(&versions, &compat); err != nil {
		return s, fmt.Errorf("read schema version: %w", err)
	}
	if !versions.Valid {
		return s, nil // an empty database
	}
	if !compat.Valid {
		return s, ErrSchemaUnreadable
	}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version`).Scan(&s.Current); err != nil {
		return s, fmt.Errorf("read schema version: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT compatible_from FROM skiff_schema`).Scan(&s.CompatibleFrom); err != nil {
		return s, fmt.Errorf("read schema compatibility: %w", err)
	}
	return s, nil
}

// ErrSchemaUnreadable: the schema predates 00075_schema_compat.sql, so it is
// older than any binary that reads it.
var ErrSchemaUnreadable = errors.New("the schema predates 00075_schema_compat.sql")
