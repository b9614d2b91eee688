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
	for _, r := range results {
		log.InfoContext(ctx, "applied migration", "file", path.Base(r.Source.Path), "duration", r.Duration)
	}
	if err != nil {
		var pe *goose.PartialError
		if errors.As(err, &pe) {
			for _, r := range pe.Applied {
				log.InfoContext(ctx, "applied migration", "file", path.Base(r.Source.Path), "duration", r.Duration)
			}
			return fmt.Errorf("migrate database: %s failed: %w", path.Base(pe.Failed.Source.Path), pe.Err)
		}
		return fmt.Errorf("migrate database: %w", err)
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
