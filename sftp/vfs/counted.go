package vfs

import (
	"cmp"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/skiffhq/skiff/storage"
)

// Files written in place on the local disk, by several handles at once.
//
// A handle that writes an existing file in place (resume, append, a write
// at an offset, a truncation by path) records at its close what the file
// grew by. Alone, that is the file's size at the close less its size at
// the open. But every handle open on a file writes into the same inode:
// two handles appending at once would each count the other's bytes, or
// both count the bytes they overwrote; and a file removed or replaced by
// another session meanwhile is freed at its size then, while its writers
// go on writing into the unlinked inode, whose bytes would be counted at
// their close though nothing stores them.
//
// So the handles of this node that write the same inode share a counted:
// what the Quota holds for the file. A close records the file's size less
// that, and makes it the counted size; a removal or a replacement frees
// the counted size (not the size it finds, which holds writes no close
// recorded yet) and marks the file gone, after which closes record
// nothing. Files of an object store have no inode: a handle there builds
// a new version, which replaces the object only if it is still the one
// the handle opened (see handle.Close), so its growth needs no sharing.
//
// This holds for the sessions of one node. Handles on other nodes sharing
// a disk (NFS) are not seen; the reconcile pass puts that right.

type fileKey struct{ dev, ino uint64 }

type counted struct {
	key  fileKey
	refs int // handles sharing it; guarded by countedFiles.mu

	mu   sync.Mutex
	size int64 // what the Quota holds for the file
	gone bool  // removed or replaced: nothing more is recorded for it
}

var countedFiles = struct {
	mu sync.Mutex
	m  map[fileKey]*counted
}{m: map[fileKey]*counted{}}

// inodeOf identifies the file fi describes, where the storage has inodes.
func inodeOf(fi fs.FileInfo) (fileKey, bool) {
	if fi == nil {
		return fileKey{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// countOpen shares the counted size of f, just opened in place for
// writing: nil where the storage has no inodes. Release it with
// closeCounted.
func countOpen(f storage.File) *counted {
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	key, ok := inodeOf(fi)
	if !ok {
		return nil
	}
	countedFiles.mu.Lock()
	defer countedFiles.mu.Unlock()
	c := countedFiles.m[key]
	if c == nil {
		c = &counted{key: key, size: fi.Size()}
		countedFiles.m[key] = c
	}
	c.refs++
	return c
}

// closeInPlace closes f, written in place, and returns what to record as
// stored: 0 if the close failed (on an object store the new version is
// then not in place); with c, the file's size less what was counted of
// it; without, growth, what the handle's own writes added.
func closeInPlace(f storage.File, c *counted, growth int64) (int64, error) {
	size := int64(-1)
	if c != nil {
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
	}
	err := f.Close()
	if c == nil {
		if err != nil {
			return 0, err
		}
		return growth, nil
	}
	countedFiles.mu.Lock()
	if c.refs--; c.refs == 0 && countedFiles.m[c.key] == c {
		delete(countedFiles.m, c.key)
	}
	countedFiles.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || c.gone {
		return 0, err
	}
	if size < 0 {
		size = c.size + growth
	}
	delta := size - c.size
	c.size = size
	return delta, nil
}

// goneFile is a regular file about to be removed or replaced.
type goneFile struct {
	size  int64
	key   fileKey
	inode bool
}

// fileAt describes the regular file at rel, if any, before it is removed
// or replaced.
func fileAt(root storage.Tree, rel string) goneFile {
	if sizer, ok := root.(storage.FileSizer); ok {
		n, _ := sizer.FileSize(rel)
		return goneFile{size: n}
	}
	fi, err := root.Lstat(rel)
	if err != nil || !fi.Mode().IsRegular() {
		return goneFile{}
	}
	return goneOf(fi)
}

// goneOf is fileAt for a file already described by fi.
func goneOf(fi fs.FileInfo) goneFile {
	g := goneFile{size: fi.Size()}
	g.key, g.inode = inodeOf(fi)
	return g
}

// freed is what the Quota held for the file, now removed or replaced:
// while handles of this node write it in place, what they have recorded
// of it (they record nothing more); else its size.
func (g goneFile) freed() int64 {
	if !g.inode {
		return g.size
	}
	countedFiles.mu.Lock()
	c := countedFiles.m[g.key]
	countedFiles.mu.Unlock()
	if c == nil {
		return g.size
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return 0
	}
	c.gone = true
	return c.size
}

// Names whose replaced or removed file the quota measures. An upload's
// close asks the size of the file it replaces, then puts itself in place;
// a removal or a replacing rename likewise. Two of them on one name at
// once, in sessions of this node (several clients uploading one name),
// would each free the same old file, or one free the file the other had
// just put in place: what is recorded would drift from what is stored by
// a file's size each time. So on each node they take the name's lock, in
// the order of the names; the data of uploads still streams in parallel,
// only the measuring and the step that puts a file in place wait. Nodes
// sharing a storage do not see each other's locks; the reconcile pass
// puts that right.

// nameKey is a name in a tree the Quota counts (its ID, as Session.tree).
type nameKey struct{ tree, rel string }

type nameLock struct {
	mu   sync.Mutex
	refs int // guarded by nameLocks.mu
}

var nameLocks = struct {
	mu sync.Mutex
	m  map[nameKey]*nameLock
}{m: map[nameKey]*nameLock{}}

// lockNames takes the locks of the names, in a fixed order, and returns
// what releases them. Names outside the trees the Quota counts (tree "")
// take none.
func lockNames(keys ...nameKey) (unlock func()) {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k nameKey) bool { return k.tree == "" })
	slices.SortFunc(keys, func(a, b nameKey) int {
		return cmp.Or(strings.Compare(a.tree, b.tree), strings.Compare(a.rel, b.rel))
	})
	keys = slices.Compact(keys)
	locks := make([]*nameLock, len(keys))
	for i, k := range keys {
		nameLocks.mu.Lock()
		l := nameLocks.m[k]
		if l == nil {
			l = &nameLock{}
			nameLocks.m[k] = l
		}
		l.refs++
		nameLocks.mu.Unlock()
		l.mu.Lock()
		locks[i] = l
	}
	return func() {
		for i, l := range locks {
			l.mu.Unlock()
			nameLocks.mu.Lock()
			if l.refs--; l.refs == 0 {
				delete(nameLocks.m, keys[i])
			}
			nameLocks.mu.Unlock()
		}
	}
}
