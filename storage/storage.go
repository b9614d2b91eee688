// Package storage keeps each account's files: a user's home (My Files) and the
// account's project folders.
//
// Every tree is handed out as a Tree (tree.go), the contract between the SFTP
// layer and a backend. On the local disk (Local) a Tree is an *os.Root, so
// whatever path a client sends afterwards, no "..", absolute path or symbolic
// link can reach outside it.
// IDs are validated UUIDs before they become directory names, so an ID can
// never be a path trick either.
//
// On-disk layout under the base directory:
//
//	<base>/<accountID>/users/<userID>/       a user's home
//	<base>/<accountID>/folders/<folderID>/   a project folder
package storage

import (
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/google/uuid"
)

// ErrInvalidID is returned when an account, user or folder ID is not a UUID.
var ErrInvalidID = errors.New("storage: invalid id")

// Storage gives access to an account's file trees (see Tree for the
// contract a backend implements). The caller owns every returned Tree and
// must close it. Implementations are safe for concurrent use.
type Storage interface {
	// UserHome returns the user's home, creating it on first use.
	UserHome(accountID, userID string) (Tree, error)
	// ProjectFolder returns a project folder, creating it on first use.
	ProjectFolder(accountID, folderID string) (Tree, error)
	// FreeSpace reports the room of the storage holding the account (see
	// Space).
	FreeSpace(accountID string) (Space, error)
}

// Directory permissions: the service's own files are readable by no one else
// on the host; dirMode leaves group read for backup or scanning agents.
const (
	baseMode = 0o700
	dirMode  = 0o750
)

// Local is a Storage on a local (or mounted shared) file system. It is safe
// for concurrent use.
type Local struct {
	base *os.Root
}

var _ Storage = (*Local)(nil)

// NewLocal opens (creating if needed) the base directory dir.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, baseMode); err != nil {
		return nil, fmt.Errorf("storage: create base: %w", err)
	}
	base, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: open base: %w", err)
	}
	return &Local{base: base}, nil
}

// Close releases the base directory. Roots already handed out stay usable.
func (l *Local) Close() error { return l.base.Close() }

// UserHome implements Storage with a *LocalTree.
func (l *Local) UserHome(accountID, userID string) (Tree, error) {
	return l.tree(accountID, "users", userID)
}

// ProjectFolder implements Storage with a *LocalTree.
func (l *Local) ProjectFolder(accountID, folderID string) (Tree, error) {
	return l.tree(accountID, "folders", folderID)
}

func (l *Local) tree(accountID, kind, id string) (Tree, error) {
	acct, err := canonicalID(accountID)
	if err != nil {
		return nil, err
	}
	leaf, err := canonicalID(id)
	if err != nil {
		return nil, err
	}
	if err := l.base.Mkdir(acct, baseMode); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("storage: create account directory: %w", err)
	}
	rel := path.Join(acct, kind, leaf)
	if err := l.base.MkdirAll(rel, dirMode); err != nil {
		return nil, fmt.Errorf("storage: create %s directory: %w", kind, err)
	}
	root, err := l.base.OpenRoot(rel)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s directory: %w", kind, err)
	}
	return NewLocalTree(root), nil
}

// FreeSpace implements Storage. It asks the file system through a descriptor
// opened inside the base, so no host path is resolved outside os.Root.
func (l *Local) FreeSpace(accountID string) (Space, error) {
	acct, err := canonicalID(accountID)
	if err != nil {
		return Space{}, err
	}
	if err := l.base.Mkdir(acct, baseMode); err != nil && !errors.Is(err, os.ErrExist) {
		return Space{}, fmt.Errorf("storage: create account directory: %w", err)
	}
	dir, err := l.base.Open(acct)
	if err != nil {
		return Space{}, fmt.Errorf("storage: open account directory: %w", err)
	}
	defer dir.Close()
	var sp Space
	err = withFD(dir, func(fd int) (err error) {
		sp, err = statfs(fd)
		return err
	})
	if err != nil {
		return Space{}, fmt.Errorf("storage: statfs: %w", err)
	}
	return sp, nil
}

// canonicalID validates a UUID and returns its canonical lower-case form, so
// that the spellings one UUID accepts all name the same directory.
func canonicalID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || u == uuid.Nil {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	return u.String(), nil
}

// withFD runs fn with f's descriptor without switching f to blocking mode,
// which (*os.File).Fd would do.
func withFD(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// RemoveUserHome deletes a user's home and everything in it, for good.
// A home that does not exist is not an error.
func (l *Local) RemoveUserHome(accountID, userID string) error {
	return l.removeTree(accountID, "users", userID)
}

// RemoveProjectFolder deletes a project folder's files, for good. A folder
// that does not exist is not an error.
func (l *Local) RemoveProjectFolder(accountID, folderID string) error {
	return l.removeTree(accountID, "folders", folderID)
}

// removeTree removes one tree through the base root, so neither the IDs nor
// a symbolic link inside the tree can make it remove anything outside.
func (l *Local) removeTree(accountID, kind, id string) error {
	acct, err := canonicalID(accountID)
	if err != nil {
		return err
	}
	leaf, err := canonicalID(id)
	if err != nil {
		return err
	}
	if err := l.base.RemoveAll(path.Join(acct, kind, leaf)); err != nil {
		return fmt.Errorf("storage: remove %s directory: %w", kind, err)
	}
	return nil
}
