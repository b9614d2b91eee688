package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/filetimes"
)

// StorageFlags say where users' files live.
type StorageFlags struct {
	Dir        string        `name:"storage-dir" env:"SKIFF_STORAGE_DIR" type:"path" help:"Where users' files live (default: <data-dir>/files)."`
	URL        string        `name:"storage-url" env:"SKIFF_STORAGE_URL" help:"Keep users' files in an S3-compatible bucket instead of --storage-dir: s3://BUCKET/PREFIX?endpoint=URL&region=REGION (more settings in docs/OPERATIONS.md#files-on-s3). Credentials come from the standard AWS environment variables, shared config or instance role."`
	PurgeGrace time.Duration `name:"purge-grace" default:"720h" env:"SKIFF_PURGE_GRACE" help:"How long deleted files stay restorable (a user deleted with deleteFiles, a deleted project folder) before they are deleted for good."`
	// ReconcileEvery is how often the storage usage is set from a walk of
	// the files (and always once at start-up).
	ReconcileEvery time.Duration `name:"storage-reconcile-every" default:"6h" env:"SKIFF_STORAGE_RECONCILE_EVERY" help:"How often storage usage (quotas) is recounted from the files, correcting drift after a crash; it is also recounted at start-up. 0: at start-up only."`
}

// purgeInterval is how often serve looks for deleted files whose grace
// period has passed.
const purgeInterval = 10 * time.Minute

// startPurge sets the grace period and the storage the purge deletes from,
// and starts the purge loop.
func (f StorageFlags) startPurge(svc *domain.Domain, store fileStore, bg *background) error {
	if f.PurgeGrace < 0 {
		return flagError("--purge-grace", "%s is negative (0 purges at the next pass)", f.PurgeGrace)
	}
	svc.Files.Grace = f.PurgeGrace
	svc.Files.Files = store
	bg.run(func(ctx context.Context) error {
		return svc.Files.Run(ctx, purgeInterval, bg.log)
	})
	if f.ReconcileEvery < 0 {
		return flagError("--storage-reconcile-every", "%s is negative (0 recounts at start-up only)", f.ReconcileEvery)
	}
	bg.run(func(ctx context.Context) error {
		return svc.Storage.RunReconcile(ctx, sftp.StorageFiles{Store: store}, f.ReconcileEvery, bg.log)
	})
	if s3store, ok := store.(*s3.Store); ok {
		bg.run(func(ctx context.Context) error {
			s3store.RunSweeper(ctx, orphanSweepInterval, func(n int, err error) {
				if err != nil {
					bg.log.Warn("storage: sweep of unfinished uploads failed", "err", err)
				} else {
					bg.log.Info("storage: unfinished uploads aborted", "count", n)
				}
			})
			return nil
		})
	}
	return nil
}

// orphanSweepInterval is how often serve aborts the multipart uploads that
// a node which died left behind in S3 storage (older than the URL's
// orphan_age).
const orphanSweepInterval = time.Hour

// fileStore is the storage serve runs on: the local disk or an S3 bucket.
type fileStore interface {
	storage.Storage
	sftp.StorageWalker
	RemoveUserHome(accountID, userID string) error
	RemoveProjectFolder(accountID, folderID string) error
}

var (
	_ fileStore = (*storage.Local)(nil)
	_ fileStore = (*s3.Store)(nil)
)

// openMarked opens the storage and checks its marker (storageMarker). It
// returns the storage, the /readyz check of the marker and what closes
// the storage. container is the container's memory limit (0: none), which
// S3 transfers' memory defaults to half of.
func (f StorageFlags) openMarked(ctx context.Context, log *slog.Logger, db *tenant.DB, dataDir string, container int64) (fileStore, func() error, func(), error) {
	if f.URL == "" {
		ready, err := storageMarker(ctx, log, db, dirMarker{f.dir(dataDir)})
		if err != nil {
			return nil, nil, nil, withCode(exitConfig, err)
		}
		store, err := f.open(dataDir)
		if err != nil {
			return nil, nil, nil, err
		}
		return store, ready, func() { store.Close() }, nil
	}
	if f.Dir != "" {
		return nil, nil, nil, withCode(exitConfig, errors.New("--storage-dir and --storage-url name two storages: set one"))
	}
	cfg, err := s3.ParseURLWithin(f.URL, container)
	if err != nil {
		return nil, nil, nil, withCode(exitConfig, fmt.Errorf("--storage-url: %w", err))
	}
	store, err := s3.Open(ctx, cfg)
	if err != nil {
		return nil, nil, nil, withCode(exitConfig, fmt.Errorf("--storage-url: %w", err))
	}
	store.KeepTimes(&filetimes.Store{DB: db})
	if err := store.Check(ctx); err != nil {
		return nil, nil, nil, withCode(checkExit(err), fmt.Errorf("--storage-url: %w", err))
	}
	ready, err := storageMarker(ctx, log, db, objectMarker{store})
	if err != nil {
		return nil, nil, nil, withCode(exitConfig, err)
	}
	return store, ready, func() {}, nil
}

// checkExit is the exit code of a failed check of the S3 store, as for the
// database: 78 for a bucket that does not exist or a certificate not
// trusted, 77 for credentials it refuses, 69 while it cannot be reached (the
// one a restart may cure).
func checkExit(err error) int {
	switch {
	case errors.Is(err, s3.ErrNoBucket), errors.Is(err, s3.ErrCertificate):
		return exitConfig
	case errors.Is(err, s3.ErrDenied):
		return exitNoPerm
	case errors.Is(err, storage.ErrUnavailable):
		return exitUnavailable
	}
	return exitFailure
}

// dir is the storage directory, by default <dataDir>/files.
func (f StorageFlags) dir(dataDir string) string {
	if f.Dir == "" {
		return filepath.Join(dataDir, "files")
	}
	return f.Dir
}

// open opens the file storage, by default in <dataDir>/files.
func (f StorageFlags) open(dataDir string) (*storage.Local, error) {
	store, err := storage.NewLocal(f.dir(dataDir))
	if err != nil {
		return nil, fmt.Errorf("file storage: %w", err)
	}
	return store, nil
}
