// Package filetimes keeps, in PostgreSQL, the modification times clients
// set on files and folders of S3-backed storage (table file_times,
// migration 00146): it is the storage.Times of skiff serve, so every node sees
// the same times. See storage/s3/times.go for what a kept time means.
package filetimes

import (
	"context"
	"path"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
)

// Store is an storage.Times on Skiff's database.
type Store struct {
	DB *tenant.DB
}

var _ storage.Times = (*Store)(nil)

type row struct {
	Dir     string    `db:"dir"`
	Name    string    `db:"name"`
	Version string    `db:"version"`
	MTime   time.Time `db:"mtime"`
}

func (r row) time() storage.Time { return storage.Time{Version: r.Version, ModTime: r.MTime.UTC()} }

// path is the row's tree-relative path.
func (r row) path() string {
	if r.Dir == "" {
		return r.Name
	}
	return r.Dir + "/" + r.Name
}

// split splits a tree-relative path into its folder ("" at the top) and
// name.
func split(p string) (dir, name string) {
	dir, name = path.Split(p)
	return strings.TrimSuffix(dir, "/"), name
}

// folder is the dir column of the entries directly in the folder p.
func folder(p string) string {
	if p == "." {
		return ""
	}
	return p
}

// List implements storage.Times.
func (s *Store) List(ctx context.Context, tree storage.TreeRef, dir string) (map[string]storage.Time, error) {
	var rows []row
	err := s.DB.InAccount(ctx, tree.Account, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `SELECT dir, name, version, mtime FROM file_times
			WHERE account_id = $1 AND tree_id = $2 AND dir = $3`, tree.Account, tree.ID, folder(dir))
	})
	if err != nil {
		return nil, tenant.DBError(err)
	}
	out := make(map[string]storage.Time, len(rows))
	for _, r := range rows {
		out[r.Name] = r.time()
	}
	return out, nil
}

// Get implements storage.Times.
func (s *Store) Get(ctx context.Context, tree storage.TreeRef, name string) (storage.Time, bool, error) {
	dir, base := split(name)
	var rows []row
	err := s.DB.InAccount(ctx, tree.Account, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `SELECT dir, name, version, mtime FROM file_times
			WHERE account_id = $1 AND tree_id = $2 AND dir = $3 AND name = $4`, tree.Account, tree.ID, dir, base)
	})
	if err != nil || len(rows) == 0 {
		return storage.Time{}, false, tenant.DBError(err)
	}
	return rows[0].time(), true, nil
}

// under is the condition on the rows of name and everything under it
// ($3 name's folder, $4 its name, $5 name itself); "." is the whole tree.
// dir is compared in byte order (COLLATE "C"), where '0' follows '/', so
// the range is the paths that start with name + "/".
const under = `account_id = $1 AND tree_id = $2 AND ($5 = '.' OR (dir = $3 AND name = $4) OR dir = $5
	OR (dir >= $5 || '/' AND dir < $5 || '0'))`

// Under implements storage.Times.
func (s *Store) Under(ctx context.Context, tree storage.TreeRef, name string) (map[string]storage.Time, error) {
	dir, base := split(name)
	var rows []row
	err := s.DB.InAccount(ctx, tree.Account, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `SELECT dir, name, version, mtime FROM file_times WHERE `+under,
			tree.Account, tree.ID, dir, base, name)
	})
	if err != nil {
		return nil, tenant.DBError(err)
	}
	out := make(map[string]storage.Time, len(rows))
	for _, r := range rows {
		out[r.path()] = r.time()
	}
	return out, nil
}

// Set implements storage.Times.
func (s *Store) Set(ctx context.Context, tree storage.TreeRef, times map[string]storage.Time) error {
	if len(times) == 0 {
		return nil
	}
	var dirs, names, versions, mtimes []string
	for p, tm := range times {
		dir, name := split(p)
		dirs, names, versions = append(dirs, dir), append(names, name), append(versions, tm.Version)
		mtimes = append(mtimes, tm.ModTime.UTC().Format(time.RFC3339Nano))
	}
	err := s.DB.InAccount(ctx, tree.Account, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO file_times (account_id, tree_id, dir, name, version, mtime)
			SELECT $1, $2, d, n, e, m FROM unnest($3::text[], $4::text[], $5::text[], $6::timestamptz[]) AS t(d, n, e, m)
			ON CONFLICT (account_id, tree_id, dir, name) DO UPDATE SET version = excluded.version, mtime = excluded.mtime`,
			tree.Account, tree.ID, tenant.StringArray(dirs), tenant.StringArray(names), tenant.StringArray(versions), tenant.StringArray(mtimes))
		return err
	})
	return tenant.DBError(err)
}

// Delete implements storage.Times.
func (s *Store) Delete(ctx context.Context, tree storage.TreeRef, name string) error {
	dir, base := split(name)
	err := s.DB.InAccount(ctx, tree.Account, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM file_times WHERE `+under, tree.Account, tree.ID, dir, base, name)
		return err
	})
	return tenant.DBError(err)
}
