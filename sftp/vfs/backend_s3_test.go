package vfs_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/storage/storagetest"
)

// The tests run on the local disk, or with SKIFF_TEST_STORAGE=s3 on the
// S3 backend over a versitygw per test (internal/s3test; .ci/run runs the
// conformance tests so). On S3 the helpers that reach "the disk" by path
// (mustWrite, mustRead, exists, statPath) go through the
// storage instead: a path under an env's base names
// <base>/<account>/<users|folders>/<id>/<name>, as on disk. Tests that
// check what only a disk does skip on S3 with skipOnS3, saying why; the
// differences are listed in docs/OPERATIONS.md#files-on-s3.
var onS3 = os.Getenv("SKIFF_TEST_STORAGE") == "s3"

// testStore is the storage an env runs on.
type testStore interface {
	storage.Storage
	Close() error
}

var (
	s3Mu    sync.Mutex
	s3Bases = map[string]*s3.Store{} // env base → its store
)

// openTestStore opens the storage of an env whose base is base.
func openTestStore(t testing.TB, base string) (testStore, error) {
	if !onS3 {
		return storage.NewLocal(base)
	}
	srv := s3test.Start(t)
	store, err := s3.New(srv.Client(), s3.Config{Bucket: srv.Bucket, Prefix: "vfs"})
	if err != nil {
		return nil, err
	}
	store.KeepTimes(storagetest.NewMemTimes()) // as skiff serve keeps them, in its database
	s3Mu.Lock()
	s3Bases[base] = store
	s3Mu.Unlock()
	t.Cleanup(func() {
		s3Mu.Lock()
		delete(s3Bases, base)
		s3Mu.Unlock()
	})
	return store, nil
}

// skipOnS3 skips a test of something only a disk does.
func skipOnS3(t testing.TB, why string) {
	t.Helper()
	if onS3 {
		t.Skip("not on S3 storage: " + why)
	}
}

// s3Path finds the tree and name a disk path stands for on S3.
func s3Path(p string) (storage.Tree, string, bool) {
	s3Mu.Lock()
	defer s3Mu.Unlock()
	for base, store := range s3Bases {
		rel, ok := strings.CutPrefix(filepath.ToSlash(p), filepath.ToSlash(base)+"/")
		if !ok {
			continue
		}
		parts := strings.SplitN(rel, "/", 4)
		if len(parts) < 3 {
			return nil, "", false
		}
		var tr storage.Tree
		var err error
		if parts[1] == "folders" {
			tr, err = store.ProjectFolder(parts[0], parts[2])
		} else {
			tr, err = store.UserHome(parts[0], parts[2])
		}
		if err != nil {
			return nil, "", false
		}
		name := "."
		if len(parts) == 4 && parts[3] != "" {
			name = path.Clean(parts[3])
		}
		return tr, name, true
	}
	return nil, "", false
}

func s3Write(t testing.TB, tr storage.Tree, name, content string) {
	t.Helper()
	dir := path.Dir(name)
	if dir != "." {
		els := strings.Split(dir, "/")
		for i := range els {
			if err := tr.Mkdir(strings.Join(els[:i+1], "/")); err != nil && !errors.Is(err, fs.ErrExist) {
				t.Fatal(err)
			}
		}
	}
	u, err := tr.Create(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.WriteAt([]byte(content), 0); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
}

func s3Read(tr storage.Tree, name string) ([]byte, error) {
	f, err := tr.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
}

// statPath is os.Stat of a path, through the storage on S3.
func statPath(p string) (fs.FileInfo, error) {
	if tr, name, ok := s3Path(p); ok {
		return tr.Stat(name)
	}
	return os.Stat(p)
}
