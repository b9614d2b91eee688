package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/tenant"
)

// storageMarkerFile is the file that tells a storage directory is the one
// this deployment's database knows (see docs/OPERATIONS.md#files).
const storageMarkerFile = ".skiff-storage"

// storageMarker makes sure dir is this deployment's storage before anything
// is stored there. The database remembers the ID of the marker file the
// first start wrote (table storage_marker):
//
//   - no ID in the database: the first start with this database. The
//     directory is created if missing, and marked (a marker already there,
//     written by a node starting at the same moment, is adopted).
//   - an ID: the directory must hold the marker with that ID. A missing
//     directory or marker is a shared mount that failed (users would see
//     empty folders and uploads would go to the wrong disk); another ID is
//     another deployment's storage. Either stops start-up.
//
// It returns the check /readyz makes from then on (storageReady).
func storageMarker(ctx context.Context, log *slog.Logger, db *tenant.DB, dir string) (func() error, error) {
	marker := filepath.Join(dir, storageMarkerFile)
	known, err := knownStorageID(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("storage marker: %w", err)
	}
	found, err := readStorageMarker(marker)
	if known != "" {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("--storage-dir %s: no marker file %s, but this database's files were stored there "+
				"(marker %s): the storage is not mounted, or the setting names another directory. Mount it, or point "+
				"--storage-dir at it, and start again (see docs/OPERATIONS.md#files)", dir, storageMarkerFile, known)
		case err != nil:
			return nil, fmt.Errorf("--storage-dir %s: %w", dir, err)
		case found != known:
			return nil, fmt.Errorf("--storage-dir %s: holds the storage marked %s, but this database's is %s: "+
				"it is another deployment's storage", dir, found, known)
		}
		return storageReady(marker, known), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--storage-dir %s: %w", dir, err)
	}
	if found == "" {
		if found, err = writeStorageMarker(dir, marker); err != nil {
			return nil, fmt.Errorf("--storage-dir %s: %w", dir, err)
		}
	}
	if known, err = recordStorageID(ctx, db, found); err != nil {
		return nil, fmt.Errorf("storage marker: %w", err)
	}
	if known != found {
		return nil, fmt.Errorf("--storage-dir %s: another node marked the storage %s at the same moment, but this directory holds %s: "+
			"the nodes do not share the storage directory", dir, known, found)
	}
	log.Info("storage directory marked as this deployment's", "dir", dir, "marker", found)
	return storageReady(marker, found), nil
}

func knownStorageID(ctx context.Context, db *tenant.DB) (string, error) {
	var id string
	err := db.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &id, `SELECT coalesce((SELECT id FROM storage_marker), '')`)
	})
	return id, err
}

// recordStorageID stores id unless a node did first, and returns the one
// stored.
func recordStorageID(ctx context.Context, db *tenant.DB, id string) (string, error) {
	var stored string
	err := db.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO storage_marker (id) VALUES ($1) ON CONFLICT DO NOTHING`, id); err != nil {
			return err
		}
		return tx.GetContext(ctx, &stored, `SELECT id FROM storage_marker`)
	})
	return stored, err
}

// readStorageMarker returns the ID in the marker file.
func readStorageMarker(marker string) (string, error) {
	b, err := os.ReadFile(marker)
	if err != nil {
		return "", err
	}
	id, _, _ := strings.Cut(string(b), "\n")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%s: not a Skiff storage marker", marker)
	}
	return id, nil
}

// writeStorageMarker creates dir if needed and marks it with a new ID. The
// marker appears whole or not at all (written aside, then linked into place,
// which fails if another node's is there already: that one is returned).
func writeStorageMarker(dir, marker string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	tmp, err := os.CreateTemp(dir, storageMarkerFile+".*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	content := id + "\nThis directory holds a Skiff deployment's files. Do not delete this file: Skiff refuses to start without it.\n"
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Link(tmp.Name(), marker); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readStorageMarker(marker)
		}
		return "", err
	}
	return id, nil
}

// storageReady is /readyz's check that the storage is still the one
// marked: a shared mount that goes away takes the node out of the load
// balancer rather than serving empty folders.
func storageReady(marker, id string) func() error {
	return func() error {
		found, err := readStorageMarker(marker)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		if found != id {
			return fmt.Errorf("storage: %s holds marker %s, not %s", marker, found, id)
		}
		return nil
	}
}
