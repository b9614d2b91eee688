package vfs_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
)

// limitedStorage is the local disk with the limits an object store may
// have: no folders made by Mkdir, and uploads written only at their end.
type limitedStorage struct{ storage.Storage }

func (s limitedStorage) UserHome(accountID, userID string) (storage.Tree, error) {
	t, err := s.Storage.UserHome(accountID, userID)
	if err != nil {
		return nil, err
	}
	return limitedTree{t}, nil
}

type limitedTree struct{ storage.Tree }

func (limitedTree) Mkdir(string) error {
	return storage.Unsupported("mkdir", "folders cannot be made on this storage")
}

func (t limitedTree) Create(name string, flag int) (storage.Upload, error) {
	u, err := t.Tree.Create(name, flag)
	if err != nil {
		return nil, err
	}
	return &appendOnly{Upload: u}, nil
}

type appendOnly struct {
	storage.Upload
	end int64
}

func (u *appendOnly) WriteAt(p []byte, off int64) (int, error) {
	if off != u.end {
		return 0, storage.Unsupported("write", "random writes are not supported on this storage")
	}
	n, err := u.Upload.WriteAt(p, off)
	u.end += int64(n)
	return n, err
}

// What a storage backend cannot do reaches the client as
// SSH_FX_OP_UNSUPPORTED with the backend's reason, the session goes on,
// and nothing is logged as a failure of the server (env's close checks).
func TestStorageRefusalsReachTheClient(t *testing.T) {
	e := newEnv(t, func(c *vfs.Config) { c.Storage = limitedStorage{c.Storage} })
	want := func(what string, err error, reason string) {
		t.Helper()
		var se *sftp.StatusError
		if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxOpUnsupported || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: %v (%s); want OP_UNSUPPORTED %q", what, err, statusCode(err), reason)
		}
	}
	want("mkdir", e.client.Mkdir("/My Files/d"), "folders cannot be made on this storage")

	f, err := e.client.Create("/My Files/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte("x"), 100)
	want("write past the end", err, "random writes are not supported on this storage")
	// The upload had a failed write: it is discarded at close, as on disk.
	if err := f.Close(); err == nil {
		t.Error("an upload with a refused write was committed")
	}
	if _, err := e.client.Stat("/My Files/f.txt"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after the discarded upload: %v", err)
	}
	if err := e.put("/My Files/g.txt", "sequential"); err != nil {
		t.Errorf("a sequential upload after the refusals: %v", err)
	}
}
