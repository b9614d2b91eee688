package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant/domain"
)

// StorageFlags say where users' files live.
type StorageFlags struct {
	Dir        string        `name:"storage-dir" env:"SKIFF_STORAGE_DIR" type:"path" help:"Where users' files live (default: <data-dir>/files)."`
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
func (f StorageFlags) startPurge(svc *domain.Domain, store *storage.Local, bg *background) error {
	if f.PurgeGrace < 0 {
		return fmt.Errorf("--purge-grace must not be negative")
	}
	svc.Files.Grace = f.PurgeGrace
	svc.Files.Files = store
	bg.run(func(ctx context.Context) error {
		return svc.Files.Run(ctx, purgeInterval, bg.log)
	})
	if f.ReconcileEvery < 0 {
		return fmt.Errorf("--storage-reconcile-every must not be negative")
	}
	bg.run(func(ctx context.Context) error {
		return svc.Storage.RunReconcile(ctx, sftp.StorageFiles{Local: store}, f.ReconcileEvery, bg.log)
	})
	return nil
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
