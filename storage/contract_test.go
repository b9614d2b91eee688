package storage_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/storagetest"
)

// The local disk keeps the contract of storage.Tree.
func TestLocalContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		l, err := storage.NewLocal(filepath.Join(t.TempDir(), "data"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}

// opaqueTree hides what a LocalTree has beyond the Tree interface.
type opaqueTree struct{ storage.Tree }

// storage.FS serves a backend without an fs.FS of its own through the
// Tree's methods.
func TestFSOfAnyTree(t *testing.T) {
	home, _ := newTrees(t)
	must := mustSucceed(t)
	must(home.Mkdir("w", 0o750))
	must(home.Mkdir("w/sub", 0o750))
	must(home.WriteFile("w/b", []byte("bbb"), 0o640))
	must(home.WriteFile("w/a", []byte("aa"), 0o640))
	must(home.WriteFile("w/sub/c", []byte("c"), 0o640))
	fsys := storage.FS(opaqueTree{storage.NewLocalTree(home)})
	var walked []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	})
	must(err)
	if want := []string{".", "w", "w/a", "w/b", "w/sub", "w/sub/c"}; !slices.Equal(walked, want) {
		t.Errorf("walked %q, want %q", walked, want)
	}
	if b, err := fs.ReadFile(fsys, "w/b"); err != nil || string(b) != "bbb" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := fs.Stat(fsys, "w/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing file: %v", err)
	}
	if _, err := fsys.Open("../w"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(../w): %v, want fs.ErrInvalid", err)
	}
}
