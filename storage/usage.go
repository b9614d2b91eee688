package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
)

// Accounts lists the accounts that have a directory under the base.
func (l *Local) Accounts() ([]string, error) {
	entries, err := fs.ReadDir(l.base.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("storage: list accounts: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, err := canonicalID(e.Name()); err == nil && e.IsDir() && id == e.Name() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// TreeSizes walks an account's trees (users' homes and project folders)
// and returns the bytes in each, by user or folder ID: the apparent size
// of every regular file (a sparse file counts at its length), leaving out
// files whose name skip reports (uploads in progress). Symbolic links and
// other special files count nothing. A tree that vanishes during the walk
// counts what was seen.
func (l *Local) TreeSizes(accountID string, skip func(name string) bool) (map[string]int64, error) {
	acct, err := canonicalID(accountID)
	if err != nil {
		return nil, err
	}
	sizes := make(map[string]int64)
	fsys := l.base.FS()
	for _, kind := range []string{"users", "folders"} {
		dir := path.Join(acct, kind)
		trees, err := fs.ReadDir(fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("storage: list %s: %w", kind, err)
		}
		for _, t := range trees {
			id, err := canonicalID(t.Name())
			if err != nil || !t.IsDir() {
				continue
			}
			var n int64
			err = fs.WalkDir(fsys, path.Join(dir, t.Name()), func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						return nil
					}
					return err
				}
				if !d.Type().IsRegular() || (skip != nil && skip(d.Name())) {
					return nil
				}
				fi, err := d.Info()
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				if err != nil {
					return err
				}
				n += fi.Size()
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("storage: walk %s/%s: %w", kind, id, err)
			}
			sizes[id] += n
		}
	}
	return sizes, nil
}
