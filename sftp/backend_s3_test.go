package sftp

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/filetimes"
)

// The end-to-end tests run on the local disk, or with SKIFF_TEST_STORAGE=s3
// on the S3 backend, a bucket per test (internal/s3test; .ci/run
// runs them so). The e2e helpers below reach the stored files through the
// storage on S3 and through the disk otherwise; checks of what only a disk
// does are relaxed on S3, saying why. The differences are listed in
// docs/OPERATIONS.md#files-on-s3.
var onS3 = os.Getenv("SKIFF_TEST_STORAGE") == "s3"

// fixtureStore is the storage a fixture's nodes share.
type fixtureStore interface {
	storage.Storage
	Close() error
}

// s3Fixture is the S3 server of a fixture on S3.
type s3Fixture struct {
	srv   *s3test.Server
	store *s3.Store
}

// openFixtureStore opens the fixture's storage; on S3, times set by
// clients are kept in db, as skiff serve keeps them.
func openFixtureStore(t *testing.T, db *tenant.DB) (fixtureStore, *s3Fixture, error) {
	if !onS3 {
		st, err := storage.NewLocal(t.TempDir())
		return st, nil, err
	}
	srv := s3test.Shared(t)
	store, err := s3.New(srv.Client(), s3.Config{Bucket: srv.Bucket, Prefix: "e2e"})
	if err != nil {
		return nil, nil, err
	}
	store.KeepTimes(&filetimes.Store{DB: db})
	return store, &s3Fixture{srv: srv, store: store}, nil
}

// homeTree is the fixture user's home.
func (e *e2e) homeTree(t testing.TB) storage.Tree {
	t.Helper()
	tr, err := e.store.UserHome(e.user.AccountID, e.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// readHome reads a stored file of the fixture user's home.
func (e *e2e) readHome(t testing.TB, name string) ([]byte, error) {
	if e.s3 == nil {
		return os.ReadFile(filepath.Join(e.home, name))
	}
	f, err := e.homeTree(t).Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
}

// homeSum is fileSum of a stored file of the home.
func (e *e2e) homeSum(t testing.TB, name string) string {
	b, err := e.readHome(t, name)
	if err != nil {
		return err.Error()
	}
	return sum(b)
}

// writeHome stores a file in the home, as something outside SFTP would.
func (e *e2e) writeHome(t testing.TB, name string, data []byte) {
	t.Helper()
	if e.s3 == nil {
		if err := os.WriteFile(filepath.Join(e.home, name), data, 0o640); err != nil {
			t.Fatal(err)
		}
		return
	}
	u, err := e.homeTree(t).Create(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
}

// statHome is os.Lstat of a stored file of the home.
func (e *e2e) statHome(t testing.TB, name string) (fs.FileInfo, error) {
	if e.s3 == nil {
		return os.Lstat(filepath.Join(e.home, name))
	}
	return e.homeTree(t).Lstat(name)
}

// homeEntries lists the home as stored, hidden files included; on S3 an
// unfinished multipart upload under it counts as an entry.
func (e *e2e) homeEntries(t testing.TB) []string {
	t.Helper()
	if e.s3 == nil {
		return entries(t.(*testing.T), e.home)
	}
	return e.s3.treeEntries(t, e.homeTree(t))
}

// treeEntries lists a tree's top and its unfinished uploads on S3.
func (f *s3Fixture) treeEntries(t testing.TB, tr storage.Tree) []string {
	t.Helper()
	list, err := fs.ReadDir(storage.FS(tr), ".")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range list {
		names = append(names, de.Name())
	}
	root := tr.(*s3.Tree).Root()
	out, err := f.srv.Client().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(f.srv.Bucket), Prefix: aws.String(root)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range out.Uploads {
		names = append(names, "(upload) "+aws.ToString(u.Key)[len(root):])
	}
	return names
}
