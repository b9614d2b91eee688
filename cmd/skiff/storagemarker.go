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

	"github.com/skiffhq/skiff/storage/s3"
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
func storageMarker(ctx context.Context, log *slog.Logger, db *tenant.DB, place markerPlace) (func() error, error) {
	known, err := knownStorageID(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("storage marker: %w", err)
	}
	found, err := place.read()
	name := place.name()
	if known != "" {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s: no marker file %s, but this database's files were stored there "+
				"(marker %s): %s (see docs/OPERATIONS.md#files)", name, storageMarkerFile, known, place.missingHint())
		case err != nil:
			return nil, fmt.Errorf("%s: %w", name, err)
		case found != known:
			return nil, fmt.Errorf("%s: holds the storage marked %s, but this database's is %s: "+
				"it is another deployment's storage", name, found, known)
		}
		return storageReady(place, known), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if found == "" {
		if found, err = place.create(newStorageID()); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if known, err = recordStorageID(ctx, db, found); err != nil {
		return nil, fmt.Errorf("storage marker: %w", err)
	}
	if known != found {
		return nil, fmt.Errorf("%s: another node marked the storage %s at the same moment, but this storage holds %s: "+
			"the nodes do not share the storage", name, known, found)
	}
	log.Info("storage marked as this deployment's", "storage", name, "marker", found)
	return storageReady(place, found), nil
}

// markerPlace is where a storage backend keeps the marker.
type markerPlace interface {
	// name names the storage in messages ("--storage-dir /srv/files").
	name() string
	// missingHint says what a missing marker most likely means.
	missingHint() string
	// read returns the marker's ID; an error matching fs.ErrNotExist
	// when there is none.
	read() (string, error)
	// create writes a marker with id unless one exists, and returns the
	// ID of the marker in place (the other node's, if it was quicker).
	create(id string) (string, error)
}

// dirMarker is the marker file in a storage directory.
type dirMarker struct{ dir string }

func (m dirMarker) name() string { return "--storage-dir " + m.dir }
func (m dirMarker) missingHint() string {
	return "the storage is not mounted, or the setting names another directory. Mount it, or point " +
		"--storage-dir at it, and start again"
}
func (m dirMarker) read() (string, error) {
	return readStorageMarker(filepath.Join(m.dir, storageMarkerFile))
}
func (m dirMarker) create(id string) (string, error) {
	return writeStorageMarker(m.dir, filepath.Join(m.dir, storageMarkerFile), id)
}

// objectMarker is the marker object at the top of an S3 storage's prefix.
type objectMarker struct{ store *s3.Store }

func (m objectMarker) name() string { return "--storage-url " + m.store.URL() }
func (m objectMarker) missingHint() string {
	return "the setting names another bucket or prefix, or the objects were deleted. Point --storage-url at the " +
		"bucket and prefix holding them, and start again"
}
func (m objectMarker) read() (string, error) {
	b, err := m.store.ReadTop(context.Background(), storageMarkerFile)
	if err != nil {
		return "", err
	}
	return parseStorageMarker(m.name(), b)
}
func (m objectMarker) create(id string) (string, error) {
	err := m.store.CreateTop(context.Background(), storageMarkerFile, []byte(markerContent(id)))
	if errors.Is(err, fs.ErrExist) {
		return m.read()
	}
	if err != nil {
		return "", err
	}
	return id, nil
}

func newStorageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func markerContent(id string) string {
	return id + "\nThis directory holds a Skiff deployment's files. Do not delete this file: Skiff refuses to start without it.\n"
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
	return parseStorageMarker(marker, b)
}

func parseStorageMarker(where string, b []byte) (string, error) {
	id, _, _ := strings.Cut(string(b), "\n")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%s: not a Skiff storage marker", where)
	}
	return id, nil
}

// writeStorageMarker creates dir if needed and marks it with a new ID. The
// marker appears whole or not at all (written aside, then linked into place,
// which fails if another node's is there already: that one is returned).
func writeStorageMarker(dir, marker, id string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, storageMarkerFile+".*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(markerContent(id)); err != nil {
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
func storageReady(place markerPlace, id string) func() error {
	return func() error {
		found, err := place.read()
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		if found != id {
			return fmt.Errorf("storage: %s holds marker %s, not %s", place.name(), found, id)
		}
		return nil
	}
}
