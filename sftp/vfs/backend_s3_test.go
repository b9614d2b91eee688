package vfs_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/storage/storagetest"
)

// The tests run on the local disk, or with SKIFF_TEST_STORAGE=s3 on the
// S3 backend, a bucket per test on a versitygw they share
// (internal/s3test; .ci/run runs the whole package so). On S3 the helpers that reach "the disk" by path
// (mustWrite, mustMkdir, mustRead, exists, statPath, lstatPath,
// readDirPath) go through the
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
	s3Bases = map[string]*s3.Store{}          // env base → its store
	s3Logs  = map[string]*s3test.RequestLog{} // env base → its store's requests
)

// s3Requests returns the requests e's store made since the last call.
func (e *env) s3Requests() []string { return e.s3Log().Take() }

// s3Log is the log of e's store's requests.
func (e *env) s3Log() *s3test.RequestLog {
	s3Mu.Lock()
	defer s3Mu.Unlock()
	return s3Logs[e.base]
}

// openTestStore opens the storage of an env whose base is base.
func openTestStore(t testing.TB, base string) (testStore, error) {
	if !onS3 {
		return storage.NewLocal(base)
	}
	srv := s3test.Shared(t)
	client, log := srv.LoggedClient()
	store, err := s3.New(client, s3.Config{Bucket: srv.Bucket, Prefix: "vfs"})
	if err != nil {
		return nil, err
	}
	store.KeepTimes(storagetest.NewMemTimes()) // as skiff serve keeps them, in its database
	s3Mu.Lock()
	s3Bases[base] = store
	s3Logs[base] = log
	s3Mu.Unlock()
	t.Cleanup(func() {
		s3Mu.Lock()
		delete(s3Bases, base)
		delete(s3Logs, base)
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

// lstatPath is os.Lstat of a path, through the storage on S3 (where
// nothing is a link).
func lstatPath(p string) (fs.FileInfo, error) {
	if tr, name, ok := s3Path(p); ok {
		return tr.Lstat(name)
	}
	return os.Lstat(p)
}

// readDirPath is os.ReadDir of a path, through the storage on S3.
func readDirPath(p string) ([]fs.DirEntry, error) {
	tr, name, ok := s3Path(p)
	if !ok {
		return os.ReadDir(p)
	}
	fis, err := s3Entries(tr, name)
	if err != nil {
		return nil, err
	}
	des := make([]fs.DirEntry, len(fis))
	for i, fi := range fis {
		des[i] = fs.FileInfoToDirEntry(fi)
	}
	return des, nil
}

// statPath is os.Stat of a path, through the storage on S3.
func statPath(p string) (fs.FileInfo, error) {
	if tr, name, ok := s3Path(p); ok {
		return tr.Stat(name)
	}
	return os.Stat(p)
}

// s3Fixture finishes writeFixture's tree on S3: its folders, and every
// entry's time (modes are the storage's own).
func s3Fixture(t *testing.T, tr storage.Tree, top string) {
	t.Helper()
	for _, d := range []string{"e", "d/sub"} {
		if err := tr.Mkdir(path.Join(top, d)); err != nil && !errors.Is(err, fs.ErrExist) {
			t.Fatal(err)
		}
	}
	var walk func(dir string)
	walk = func(dir string) {
		for _, fi := range s3List(t, tr, dir) {
			p := path.Join(dir, fi.Name())
			if fi.IsDir() {
				walk(p)
			}
			tm := time.Unix(fixtureTime, 0)
			if err := tr.Chtimes(p, tm, tm); err != nil {
				t.Fatal(err)
			}
		}
	}
	walk(top)
}

// s3List lists a folder of tr, by name.
func s3List(t *testing.T, tr storage.Tree, dir string) []fs.FileInfo {
	t.Helper()
	fis, err := s3Entries(tr, dir)
	if err != nil {
		t.Fatal(err)
	}
	return fis
}

// s3Entries lists a folder of tr, by name.
func s3Entries(tr storage.Tree, dir string) ([]fs.FileInfo, error) {
	f, err := tr.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fis, err := f.Readdir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(fis, func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return fis, nil
}

// s3TreeState is treeState's list of a tree on S3, in the order a disk
// walk gives (by name).
func s3TreeState(t *testing.T, tr storage.Tree, dir string) []string {
	t.Helper()
	var out []string
	for _, fi := range s3List(t, tr, dir) {
		p := path.Join(dir, fi.Name())
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		if fi.IsDir() {
			out = append(out, rel+"/")
			for _, sub := range s3TreeState(t, tr, p) {
				out = append(out, rel+"/"+sub)
			}
			continue
		}
		b, err := s3Read(tr, p)
		if err != nil {
			out = append(out, rel+" "+err.Error())
			continue
		}
		sum := sha256.Sum256(b)
		out = append(out, fmt.Sprintf("%s %d %s", rel, len(b), hex.EncodeToString(sum[:4])))
	}
	return out
}

// On S3 a folder is a key prefix: it has no size or link count, and its
// time is its marker's (or one set), not its entries' last change
// (docs/OPERATIONS.md#files-on-s3). s3Shape blanks those out of a
// differential step's answer, on both sides, so that the rest is compared.
var (
	dirAttrs    = regexp.MustCompile(`size=\d+,owner,mode=(40\d+),mtime=[^ \]|,]+`)
	dirLongName = regexp.MustCompile(`\[(d[-rwxsStT]{9}) +\d+ +\d+ +[A-Z][a-z]{2} +\d+ +[\d:hm]+ `)
)

func s3Shape(s string) string {
	s = dirAttrs.ReplaceAllString(s, "size=DIR,owner,mode=$1,mtime=DIR")
	return dirLongName.ReplaceAllString(s, "[$1 DIR ")
}
