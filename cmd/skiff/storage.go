package main

import (
	"fmt"
	"path/filepath"

	"github.com/skiffhq/skiff/storage"
)

// StorageFlags say where users' files live.
type StorageFlags struct {
	Dir string `name:"storage-dir" env:"SKIFF_STORAGE_DIR" type:"path" help:"Where users' files live (default: <data-dir>/files)."`
}

// open opens the file storage, by default in <dataDir>/files.
func (f StorageFlags) open(dataDir string) (*storage.Local, error) {
	dir := f.Dir
	if dir == "" {
		dir = filepath.Join(dataDir, "files")
	}
	store, err := storage.NewLocal(dir)
	if err != nil {
		return nil, fmt.Errorf("file storage: %w", err)
	}
	return store, nil
}
