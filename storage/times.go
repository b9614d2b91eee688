package storage

import (
	"context"
	"time"
)

// A backend that cannot keep the modification times clients set (an object
// store: an object's time is when it was written, and changing it means
// writing the object again) keeps them in a Times: skiff serve's is
// PostgreSQL (tenant/filetimes), so that every node sees the same times.

// TreeRef names a tree for a Times: its account and its ID (the user's ID
// for a home, the folder's ID for a project folder).
type TreeRef struct {
	Account, ID string
}

// Time is a modification time kept for a file or folder. Version is the
// backend's name for the file's content when the time was set (an S3
// object's ETag), so that the time stops applying once the file is written
// again; empty for a folder.
type Time struct {
	Version string
	ModTime time.Time
}

// Times keeps the times set on the files and folders of trees. Paths are
// tree-relative, as Tree names them; "." is the top.
type Times interface {
	// List returns the times kept for the entries directly in dir, by
	// name.
	List(ctx context.Context, tree TreeRef, dir string) (map[string]Time, error)
	// Get returns the time kept for name, and whether there is one.
	Get(ctx context.Context, tree TreeRef, name string) (Time, bool, error)
	// Under returns the times kept for name and everything under it, by
	// path.
	Under(ctx context.Context, tree TreeRef, name string) (map[string]Time, error)
	// Set keeps times, by path, replacing what was kept for those paths.
	Set(ctx context.Context, tree TreeRef, times map[string]Time) error
	// Delete forgets name and everything under it ("." the whole tree).
	Delete(ctx context.Context, tree TreeRef, name string) error
}
