package vfs

import (
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/storage"
)

// handle is an open file. The channel's server calls ReadAt, WriteAt and
// Close in the order the client's requests came; Close once: on the
// client's close, or when the channel ends, after TransferError.
//
// An atomic upload is a storage.Upload (on the local disk a hidden
// temporary file next to the target); Close commits it (syncs it and
// renames it over the target), or discards it if a write failed or the
// connection was lost first. Other handles work in place.
type handle struct {
	s        *Session
	f        storage.File
	vpath    string
	canRead  bool // opened for reading, with the Download right
	canWrite bool // opened for writing
	// mayTouch: the handle may set the file's times: the user may change
	// the file (setstat's right, Upload), as every handle opened with
	// CREAT, TRUNC, APPEND or WRITE needs.
	mayTouch bool
	// noReadRight: opened for reading where the user may not download.
	noReadRight bool
	// appending: f has O_APPEND and writes go to its end, whatever their
	// offset (SSH_FXF_APPEND, as OpenSSH does).
	appending bool

	// Atomic uploads only: up is f.
	up        storage.Upload
	root      storage.Tree
	rel       string // the target, inside root (also set for in-place writes)
	failed    atomic.Bool
	removed   atomic.Bool  // the uploader removed it: discarded at close, quietly
	unflushed atomic.Int64 // bytes written since writeback was last started

	meter meter // what the handle's writes are charged (quota.go)
	// counted is shared by the handles of this node writing the same
	// file in place (counted.go); nil for uploads and object stores.
	counted *counted

	once     sync.Once
	closeErr error

	// moved counts the bytes read or written through the handle, for the
	// log of a transfer cut at shutdown (Session.Transfers), the activity
	// log and the session's Traffic.
	moved atomic.Int64
	// opened is when the client opened it (Session.trackFile), for the
	// transfer's duration in Metrics and the activity log.
	opened time.Time

	// For the activity log (activity.go): the project folder the handle
	// writes to ("" elsewhere; rel is then the path in it), whether the
	// channel ended with it open, and whether it was the source of a
	// copy-data. cut and copySource are set by the channel's server,
	// which also closes the handle.
	folderID   string
	cut        bool
	copySource bool
}

func (h *handle) atomic() bool { return h.up != nil }

// ReadAt reads at off. The Gate is checked on every packet; its cached yes
// costs an atomic load and a clock read.
func (h *handle) ReadAt(p []byte, off int64) (int, error) {
	if !h.canRead {
		if h.noReadRight {
			return 0, errDenied
		}
		return 0, errBadFD
	}
	if err := h.s.allow(h.s.ctx); err != nil {
		return 0, err
	}
	n, err := h.f.ReadAt(p, off)
	h.moved.Add(int64(n))
	h.s.metrics.moved(download, n)
	if err != nil && err != io.EOF {
		st, _ := fsError(err)
		return n, st
	}
	return n, err
}

// WriteAt writes at off, or at the end when appending. A failed write dooms an atomic upload: a file
// with a hole must not replace the target.
func (h *handle) WriteAt(p []byte, off int64) (int, error) {
	if err := h.startWrite(off, int64(len(p))); err != nil {
		return 0, err
	}
	var n int
	var err error
	if h.appending {
		n, err = h.f.Write(p) // WriteAt is not used with O_APPEND
	} else {
		n, err = h.f.WriteAt(p, off)
	}
	return n, h.wrote(n, err)
}

// startWrite checks that up to n bytes may be written at off (at the end
// when appending): every write to a file goes through it, WRITE and the
// chunks of copy-data alike, and then through wrote.
func (h *handle) startWrite(off, n int64) error {
	if !h.canWrite {
		return errBadFD // EBADF, as OpenSSH
	}
	if err := h.s.allow(h.s.ctx); err != nil {
		h.failed.Store(true)
		return err
	}
	if err := h.CheckWrite(h.writeEnd(off, n)); err != nil {
		h.failed.Store(true)
		return err
	}
	return nil
}

// wrote accounts for n bytes written, and turns a write's error into a
// status.
func (h *handle) wrote(n int, err error) error {
	h.moved.Add(int64(n))
	h.s.metrics.moved(upload, n)
	if err != nil {
		h.failed.Store(true)
		st, _ := fsError(err)
		return st
	}
	if h.atomic() && h.unflushed.Add(int64(n)) >= writebackEvery {
		h.unflushed.Store(0)
		if w, ok := h.f.(storage.WritebackStarter); ok {
			w.StartWriteback()
		}
	}
	return nil
}

// setattrs is FSETSTAT on an open file: size and times change the file the
// handle has open (ftruncate and futimes in OpenSSH), even if its path has
// since been renamed or replaced. The rights were checked at open: times
// may be set on a handle open for writing, or for reading where the user
// may change the file (like the owner of a file in OpenSSH, for whom any
// descriptor will do; but a user who may only download from a shared
// folder changes nothing in it, as SETSTAT by path refuses them); the size
// only on a handle open for writing. Permissions and ownership are
// ignored, as in setstat.
func (h *handle) setattrs(a attrs) error {
	if err := h.s.allow(h.s.ctx); err != nil {
		return err
	}
	if a.flags&attrSize != 0 {
		if a.size > math.MaxInt64 || !h.canWrite {
			return errInvalid // ftruncate's EINVAL
		}
		if err := h.CheckWrite(int64(a.size)); err != nil {
			return err
		}
		if err := h.f.Truncate(int64(a.size)); err != nil {
			return h.s.failPath("truncate", h.vpath, err)
		}
		h.resized(int64(a.size))
	}
	if a.flags&attrACModTime != 0 {
		if !h.canWrite && !h.mayTouch {
			return errDenied
		}
		if err := h.f.Chtimes(time.Unix(int64(a.atime), 0), time.Unix(int64(a.mtime), 0)); err != nil {
			return h.s.failPath("futimes", h.vpath, err)
		}
	}
	return nil
}

// writebackEvery is how much an upload writes before the kernel is asked
// to start writing it to disk. Without it the fsync on close would find
// the whole file dirty and stall the client's close for seconds on a large
// upload; with it the disk works while the data still arrives.
const writebackEvery = 8 << 20

// TransferError is called when the channel ended with the handle still
// open: the upload is incomplete.
func (h *handle) TransferError(err error) {
	h.cut = true
	if h.atomic() {
		h.s.log.Info("sftp: upload discarded, connection ended before close", "path", h.vpath, "err", err)
	}
	h.failed.Store(true)
}

// Close finishes the handle; for an atomic upload it commits or discards.
func (h *handle) Close() error {
	h.once.Do(func() {
		h.s.forgetFile(h)
		defer h.measure()
		defer func() { h.recordTransfer(h.closeErr) }()
		if !h.atomic() {
			// On an object store the close of a file written in place is
			// when its new version replaces the object; an error means it
			// did not, and what was written is not stored.
			delta, err := closeInPlace(h.f, h.counted, h.meter.size-h.meter.base)
			if err != nil {
				h.closeErr = h.s.failPath("close", h.vpath, err)
			}
			h.settleQuota(delta)
			return
		}
		h.s.forgetUpload(h)
		h.closeErr = h.commit()
	})
	return h.closeErr
}

// measure records the transfer in Metrics once the handle is closed: an
// upload if it was open for writing, else a download if for reading.
func (h *handle) measure() {
	dir := download
	switch {
	case h.canWrite:
		dir = upload
	case !h.canRead:
		return
	}
	h.s.metrics.transferDone(dir, h.s.cfg.Now().Sub(h.opened), h.closeErr == nil && !h.failed.Load())
}

func (h *handle) commit() error {
	if h.removed.Load() {
		// Removed by its uploader while open: as with a file unlinked
		// while written, the data goes nowhere and close succeeds.
		h.settleQuota(0)
		if err := h.up.Close(); err != nil {
			h.s.log.Error("sftp: remove unfinished upload", "path", h.vpath, "err", err)
		}
		return nil
	}
	var err error
	var replaced goneFile
	unlock := func() {}
	if !h.failed.Load() {
		if h.meter.pool != nil {
			unlock = lockNames(nameKey{h.meter.pool.tree, h.rel})
		}
		replaced = fileAt(h.root, h.rel)
		err = h.up.Commit()
	}
	committed := err == nil && !h.failed.Load()
	if committed {
		h.settleQuota(h.meter.size - replaced.freed())
	} else {
		h.settleQuota(0)
	}
	unlock()
	// Closing a committed upload makes its rename durable (the local disk
	// syncs the directory): without it a crash could bring back the old
	// file after the client was told OK.
	cerr := h.up.Close()
	if !committed {
		if cerr != nil {
			h.s.log.Error("sftp: remove unfinished upload", "path", h.vpath, "err", cerr)
		}
		if err != nil {
			return h.s.failPath("upload", h.vpath, err)
		}
		return errUploadDiscarded
	}
	if cerr != nil {
		h.s.log.Warn("sftp: sync directory after upload", "path", h.vpath, "err", cerr)
	}
	return nil
}

// trackUpload records an atomic upload so that stat and setstat on its
// path (OpenSSH's "put -p" sets times on the open handle) see the file
// being written rather than the old one.
func (s *Session) trackUpload(h *handle) {
	s.mu.Lock()
	s.uploads[h.vpath] = h
	s.mu.Unlock()
}

func (s *Session) forgetUpload(h *handle) {
	s.mu.Lock()
	if s.uploads[h.vpath] == h {
		delete(s.uploads, h.vpath)
	}
	s.mu.Unlock()
}

func (s *Session) openUpload(vpath string) *handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploads[vpath]
}

// lister is an open directory listing. ListAt is asked for consecutive
// batches and returns io.EOF with the last one.
type lister interface {
	ListAt(buf []os.FileInfo, off int64) (int, error)
}

var (
	_ lister = (*dirLister)(nil)
	_ lister = fileInfos(nil)
)

// dirLister streams a directory listing in batches, hiding unfinished
// uploads. Those older than staleBefore were left
// by a crash (a live upload touches its file with every write): the lister
// removes them, so they cannot pile up unseen.
type dirLister struct {
	f           storage.File
	tree        storage.Tree
	rel         string // the directory, in tree
	next        int64
	staleBefore time.Time
	// show gives an entry the modes the session's rights allow (nil:
	// entries show as they are).
	show func(fs.FileInfo) fs.FileInfo
	// dots come first: "." and "..".
	dots fileInfos
	// mounts come next: the project folders mounted in the directory,
	// sorted by name. An entry of the same name, made since the session
	// last named its mounts, is left out: the name leads to the folder
	// until they are named again.
	mounts fileInfos
}

// staleUploadAge is how long a hidden upload file must have gone unwritten
// before a listing of its directory removes it.
const staleUploadAge = 48 * time.Hour

func (l *dirLister) ListAt(buf []os.FileInfo, off int64) (int, error) {
	if off != l.next {
		return 0, errInternal
	}
	n := 0
	for ; n < len(buf) && l.next+int64(n) < int64(len(l.dots)+len(l.mounts)); n++ {
		if i := int(l.next) + n; i < len(l.dots) {
			buf[n] = l.dots[i]
		} else {
			buf[n] = l.mounts[i-len(l.dots)]
		}
	}
	for n < len(buf) {
		infos, err := l.f.Readdir(len(buf) - n)
		for _, fi := range infos {
			if l.mounted(fi.Name()) {
				continue
			}
			if isTemp(fi.Name()) {
				if fi.ModTime().Before(l.staleBefore) {
					l.removeStale(fi.Name())
				}
				continue
			}
			if l.show != nil {
				fi = l.show(fi)
			}
			buf[n] = fi
			n++
		}
		if err == io.EOF || (err == nil && len(infos) == 0) {
			l.next += int64(n)
			return n, io.EOF
		}
		if err != nil {
			l.next += int64(n)
			st, _ := fsError(err)
			return n, st
		}
	}
	l.next += int64(n)
	return n, nil
}

// mounted reports whether a mount has the name; the mounts are sorted by
// name (myFilesNames), and this runs for every entry listed.
func (l *dirLister) mounted(name string) bool {
	_, found := slices.BinarySearchFunc(l.mounts, name, func(m os.FileInfo, name string) int {
		return strings.Compare(m.Name(), name)
	})
	return found
}

// removeStale removes a leftover upload of the directory; the name is one
// element, and the tree keeps the lookup inside it.
func (l *dirLister) removeStale(name string) {
	l.tree.Remove(path.Join(l.rel, name))
}

func (l *dirLister) Close() error { return l.f.Close() }

func isTemp(name string) bool { return storage.IsUploadTemp(name) }

// fileInfos lists a fixed set of entries.
type fileInfos []os.FileInfo

func (l fileInfos) ListAt(buf []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(buf, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// dirInfo describes a directory that exists only in the tree.
type dirInfo struct {
	name string
	mode fs.FileMode
	mod  time.Time
}

func (d dirInfo) Name() string       { return d.name }
func (d dirInfo) Size() int64        { return 0 }
func (d dirInfo) Mode() fs.FileMode  { return fs.ModeDir | d.mode }
func (d dirInfo) ModTime() time.Time { return d.mod }
func (d dirInfo) IsDir() bool        { return true }
func (d dirInfo) Sys() any           { return nil }

// namedInfo shows a file under its name in the tree, e.g. a shared
// folder's top under its display name instead of ".".
type namedInfo struct {
	fs.FileInfo
	name string
}

func (n namedInfo) Name() string { return n.name }

// modeInfo shows a file with other permission bits.
type modeInfo struct {
	fs.FileInfo
	mode fs.FileMode
}

func (m modeInfo) Mode() fs.FileMode { return m.mode }

// shownMode is fi with the permission bits that say what a user with
// rights r may do: no write bits where they may change nothing, no read
// bits where they may not read (download a file, list a folder).
func shownMode(fi fs.FileInfo, r Rights) fs.FileInfo {
	var clear fs.FileMode
	if fi.IsDir() {
		if r&(Upload|Mkdir|Delete|Rename) == 0 {
			clear |= 0o222
		}
		if !r.Has(List) {
			clear |= 0o444
		}
	} else {
		if !r.Has(Upload) {
			clear |= 0o222
		}
		if !r.Has(Download) {
			clear |= 0o444
		}
	}
	if fi.Mode()&clear == 0 {
		return fi
	}
	return modeInfo{fi, fi.Mode() &^ clear}
}
