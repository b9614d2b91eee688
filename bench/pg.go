package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/pgserver"
	"github.com/skiffhq/skiff/migrations"
)

// benchDatabase is a private PostgreSQL with a migrated database, started by
// the benchmarks that need one. The suite owns it: no data of anyone else is
// ever touched, and it is gone when the run ends.
type benchDatabase struct {
	server  *pgserver.Server
	dataDir string
	url     string // superuser URL of the benchmark database
	admin   *sql.DB
}

// startDatabase starts PostgreSQL under the work directory (ephemeral: no
// fsync, this is throwaway data) and migrates a fresh database in it.
func (r *runner) startDatabase(ctx context.Context) (*benchDatabase, error) {
	if r.db != nil {
		return r.db, nil
	}
	dir := filepath.Join(r.work, "postgres")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// When the suite runs as root, PostgreSQL runs as another user, who
	// must be able to enter the folders above its data directory.
	for _, d := range []string{r.work, dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, err
		}
	}
	dataDir := filepath.Join(dir, "data")
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: dataDir, Ephemeral: true, Logger: r.log})
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL for the benchmarks: %w", err)
	}
	db := &benchDatabase{server: srv, dataDir: dataDir}
	admin, err := sql.Open("postgres", srv.URL("postgres"))
	if err == nil {
		_, err = admin.ExecContext(ctx, "CREATE DATABASE skiffbench")
		admin.Close()
	}
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("create benchmark database: %w", err)
	}
	db.url = srv.URL("skiffbench")
	if db.admin, err = sql.Open("postgres", db.url); err != nil {
		srv.Stop()
		return nil, err
	}
	if err := migrations.Up(ctx, db.admin, nil); err != nil {
		db.close()
		return nil, err
	}
	r.db = db
	return db, nil
}

// runtimeURL is the benchmark database for a login role like a
// deployment's runtime role (no superuser, no BYPASSRLS, owns nothing; it
// may only become skiff_app), which skiff serve insists on.
func (db *benchDatabase) runtimeURL(ctx context.Context) (string, error) {
	const role = "skiffbench_service"
	if _, err := db.admin.ExecContext(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+role+`') THEN
			CREATE ROLE `+role+` LOGIN IN ROLE skiff_app;
		END IF;
	END $$`); err != nil {
		return "", fmt.Errorf("benchmark runtime role: %w", err)
	}
	return db.server.RoleURL(role, "skiffbench"), nil
}

func (db *benchDatabase) close() {
	db.admin.Close()
	_ = db.server.Stop()
}

// copyRows bulk-loads rows into table with COPY, in one transaction.
func copyRows(ctx context.Context, db *sql.DB, table string, cols []string, n int, row func(i int) []any) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pq.QuoteIdentifier(c)
	}
	stmt, err := tx.PrepareContext(ctx, "COPY "+pq.QuoteIdentifier(table)+" ("+strings.Join(quoted, ", ")+") FROM STDIN")
	if err != nil {
		return fmt.Errorf("COPY %s: %w", table, err)
	}
	for i := range n {
		if _, err := stmt.ExecContext(ctx, row(i)...); err != nil {
			return fmt.Errorf("COPY %s row %d: %w", table, i, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("COPY %s (%s): %w", table, strings.Join(cols, ", "), err)
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	return tx.Commit()
}

// transactions is how many transactions the benchmark database has committed
// or rolled back so far (PostgreSQL's statistics, flushed at least every
// second or so: read it after a pause for exact deltas). -1 if unknown.
func (db *benchDatabase) transactions(ctx context.Context) int64 {
	// Statistics reach pg_stat_database when a backend is idle; give the
	// server's backends a moment, and read a fresh snapshot.
	time.Sleep(1500 * time.Millisecond)
	var n int64
	err := db.admin.QueryRowContext(ctx, `SELECT pg_stat_clear_snapshot(), xact_commit + xact_rollback
		FROM pg_stat_database WHERE datname = current_database()`).Scan(new(any), &n)
	if err != nil {
		return -1
	}
	return n
}
