package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// fileMode is the mode of the files uploads create: nothing a client
// uploads becomes executable or readable by other host users.
const fileMode = 0o640

// LocalTree is a Tree on the local disk: an *os.Root, so whatever name a
// client sends, no "..", absolute path or symbolic link can reach outside
// it. Errors are those of *os.Root and *os.File.
type LocalTree struct {
	root *os.Root
}

var _ Tree = (*LocalTree)(nil)

// NewLocalTree makes a Tree of an open root; the tree owns it.
func NewLocalTree(root *os.Root) *LocalTree { return &LocalTree{root: root} }

// Root is the tree's *os.Root, for tests and tools that work on the disk.
func (t *LocalTree) Root() *os.Root { return t.root }

// FS is the tree as an fs.FS (os.Root.FS), for walks.
func (t *LocalTree) FS() fs.FS { return t.root.FS() }

// Stat implements Tree.
func (t *LocalTree) Stat(name string) (fs.FileInfo, error) { return t.root.Stat(name) }

// Lstat implements Tree.
func (t *LocalTree) Lstat(name string) (fs.FileInfo, error) { return t.root.Lstat(name) }

// Open implements Tree.
func (t *LocalTree) Open(name string) (File, error) {
	f, err := t.root.Open(name)
	if err != nil {
		return nil, err
	}
	return &localFile{f}, nil
}

// OpenFile implements Tree. os.O_CREATE and os.O_EXCL are refused: new
// files come from Create.
func (t *LocalTree) OpenFile(name string, flag int) (File, error) {
	if flag&(os.O_CREATE|os.O_EXCL) != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := t.root.OpenFile(name, flag, 0)
	if err != nil {
		return nil, err
	}
	return &localFile{f}, nil
}

// Mkdir implements Tree.
func (t *LocalTree) Mkdir(name string) error { return t.root.Mkdir(name, dirMode) }

// Remove implements Tree.
func (t *LocalTree) Remove(name string) error { return t.root.Remove(name) }

// Chtimes implements Tree.
func (t *LocalTree) Chtimes(name string, atime, mtime time.Time) error {
	return t.root.Chtimes(name, atime, mtime)
}

// Move implements Tree with one rename(2) (see Move); to must be a
// LocalTree.
func (t *LocalTree) Move(name string, to Tree, newName string, replace bool) error {
	dst, ok := to.(*LocalTree)
	if !ok {
		return Unsupported("rename", "cannot move between storages")
	}
	return Move(t.root, name, dst.root, newName, replace)
}

// Close implements Tree.
func (t *LocalTree) Close() error { return t.root.Close() }

// Create implements Tree. The upload is written to a hidden file next to
// name (UploadTempPrefix), which Commit syncs and renames over name.
//
// An exclusive upload's hidden file has a name that follows from name's,
// and it is locked (flock) while the upload runs, so a second exclusive
// create of the same name, from any process on the host, fails as
// O_CREAT|O_EXCL does. The lock ends with the descriptor: a file left by a
// crash does not hold the name, it is taken over. (flock does not reach
// across NFS clients: several nodes on one NFS export do not see each
// other's locks.)
func (t *LocalTree) Create(name string, flag int) (Upload, error) {
	excl := flag&os.O_EXCL != 0
	oflag := os.O_RDWR | flag&os.O_APPEND
	if excl {
		return t.reserve(name, oflag)
	}
	tmp := tempName(name)
	f, err := t.root.OpenFile(tmp, oflag|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, err
	}
	// Locked while the upload holds it, so that ClearDeadUploads tells it
	// from what a crash left. A file that ClearDeadUploads locked first
	// (in the instant after it was created) is given up.
	if err := lockExclusive(f); err != nil {
		f.Close()
		t.root.Remove(tmp)
		return nil, err
	}
	return &localUpload{localFile: localFile{f}, tree: t, rel: name, tmp: tmp}, nil
}

// ClearDeadUploads removes from the directory dir the hidden files that no
// upload holds (their lock is free): what a crash left, or an upload whose
// folder another session renamed while it ran. They would keep the folder
// from being removed while it looks empty. It stops at the first entry
// that is not such a file, since the folder then cannot be removed anyway,
// and reports whether it removed anything.
func (t *LocalTree) ClearDeadUploads(dir string) (bool, error) {
	d, err := t.root.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	removed := false
	for {
		entries, err := d.ReadDir(100)
		for _, e := range entries {
			if !IsUploadTemp(e.Name()) || e.IsDir() {
				return removed, nil
			}
			if t.clearDead(path.Join(dir, e.Name())) {
				removed = true
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return removed, err
		}
	}
}

// clearDead removes the hidden upload file rel if no upload holds its lock.
func (t *LocalTree) clearDead(rel string) bool {
	f, err := t.root.OpenFile(rel, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if lockExclusive(f) != nil {
		return false // a live upload's
	}
	return t.root.Remove(rel) == nil
}

// reserve opens and locks the hidden file of an exclusive upload.
func (t *LocalTree) reserve(name string, oflag int) (Upload, error) {
	sum := sha256.Sum256([]byte(path.Base(name)))
	tmp := path.Join(path.Dir(name), UploadTempPrefix+"excl-"+hex.EncodeToString(sum[:16]))
	f, err := t.root.OpenFile(tmp, oflag|os.O_CREATE, fileMode)
	if err != nil {
		return nil, err
	}
	exists := &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	err = lockExclusive(f)
	if errors.Is(err, unix.EWOULDBLOCK) {
		err = exists
	}
	if err == nil {
		// Locked, but it may be a finished upload's file, renamed to its
		// target since we opened it, or the target may exist by now.
		fi, ferr := f.Stat()
		cur, lerr := t.root.Lstat(tmp)
		switch {
		case ferr != nil || lerr != nil || !os.SameFile(fi, cur):
			err = exists
		case t.exists(name):
			t.root.Remove(tmp) // ours while we hold the lock
			err = exists
		default:
			err = f.Truncate(0) // what a crashed upload left
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &localUpload{localFile: localFile{f}, tree: t, rel: name, tmp: tmp, excl: true}, nil
}

func (t *LocalTree) exists(name string) bool {
	_, err := t.root.Lstat(name)
	return err == nil
}

// lockExclusive takes f's flock without waiting: unix.EWOULDBLOCK if
// another descriptor holds it.
func lockExclusive(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) { err = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB) })
	if err != nil {
		return err
	}
	return cerr
}

// tempName returns a fresh hidden upload name in the directory of rel.
func tempName(rel string) string {
	return path.Join(path.Dir(rel), UploadTempPrefix+rand.Text())
}

// localFile is a File on an *os.File.
type localFile struct {
	*os.File
}

var (
	_ File             = (*localFile)(nil)
	_ RangeCopier      = (*localFile)(nil)
	_ WritebackStarter = (*localFile)(nil)
)

// Chtimes implements File with futimes(2), to the second.
func (f *localFile) Chtimes(atime, mtime time.Time) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	tv := []unix.Timeval{unix.NsecToTimeval(atime.UnixNano()), unix.NsecToTimeval(mtime.UnixNano())}
	cerr := rc.Control(func(fd uintptr) { err = unix.Futimes(int(fd), tv) })
	if err != nil {
		return &fs.PathError{Op: "futimes", Path: f.Name(), Err: err}
	}
	return cerr
}

// CopyRange implements RangeCopier with copy_file_range(2) where src is a
// local file too.
func (f *localFile) CopyRange(src File, srcOff, dstOff, n int64) (int, error) {
	var s *os.File
	switch src := src.(type) {
	case *localFile:
		s = src.File
	case *localUpload:
		s = src.File
	default:
		return 0, errNoCopyRange
	}
	return copyFileRange(s, srcOff, f.File, dstOff, n)
}

// StartWriteback implements WritebackStarter with sync_file_range(2) on
// Linux; it does nothing elsewhere.
func (f *localFile) StartWriteback() { startWriteback(f.File) }

// localUpload is an Upload in a hidden file next to its target.
type localUpload struct {
	localFile
	tree *LocalTree
	excl bool

	mu        sync.Mutex
	rel, tmp  string // the target, and the hidden file, in tree
	committed bool
	done      bool // Close was called
	closed    bool // the descriptor is closed
}

var _ Upload = (*localUpload)(nil)

// Commit implements Upload: fsync, then rename over the target (without
// replacing for an exclusive upload). Close then fsyncs the directory, so
// that a crash cannot bring back the old file after a client was told OK.
// An exclusive upload keeps its lock, so its name, until Close.
func (u *localUpload) Commit() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	err := u.File.Sync()
	if err == nil {
		err = Move(u.tree.root, u.tmp, u.tree.root, u.rel, !u.excl)
	}
	if err != nil {
		return err
	}
	u.committed = true
	if !u.excl {
		u.closed = true
		_ = u.File.Close() // synced and in place: nothing to lose
	}
	return nil
}

// Close implements Upload: after a commit it fsyncs the directory; without
// one it removes the hidden file. A hidden file that is no longer where the
// upload put it (another session renamed its folder meanwhile) cannot be
// removed by name: it is emptied through the descriptor, so that the bytes
// it held, which no quota counts, do not stay hidden in the folder until
// a listing removes the file as stale.
func (u *localUpload) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var err error
	switch {
	case u.done:
	case u.committed:
		err = syncDir(u.tree.root, path.Dir(u.rel))
	default:
		rerr := u.tree.root.Remove(u.tmp)
		switch {
		case errors.Is(rerr, fs.ErrNotExist) && !u.closed:
			err = u.File.Truncate(0)
		case rerr != nil && !errors.Is(rerr, fs.ErrNotExist):
			err = rerr
		}
	}
	u.done = true
	if !u.closed {
		u.closed = true
		if cerr := u.File.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Rename implements Upload. The hidden file moves next to the new target
// when its directory changes, so that Commit renames within one directory.
func (u *localUpload) Rename(newName string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if path.Dir(u.rel) != path.Dir(newName) {
		tmp := tempName(newName)
		if err := Move(u.tree.root, u.tmp, u.tree.root, tmp, false); err != nil {
			return err
		}
		u.tmp = tmp
	}
	u.rel = newName
	return nil
}

// Reopen implements Upload.
func (u *localUpload) Reopen() (File, error) {
	u.mu.Lock()
	tmp := u.tmp
	u.mu.Unlock()
	f, err := u.tree.root.OpenFile(tmp, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return &localFile{f}, nil
}

// syncDir fsyncs a directory of root.
func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
