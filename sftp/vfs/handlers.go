package vfs

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/storage"
)

// The operations of the file tree. Each takes the client's path as sent;
// resolve cleans it (relative paths start at the session's start
// directory) and checks the Gate first.

// openRead opens a file for download: it needs Download in a shared folder.
func (s *Session) openRead(p string) (*handle, error) {
	loc, err := s.resolve(s.ctx, p)
	if err != nil {
		return nil, err
	}
	if loc.virtual() || loc.top() {
		return nil, errIsDir
	}
	// The session's own upload in progress is what its name stands for,
	// as the file being written is in OpenSSH: its uploader can read it.
	if up := s.openUpload(loc.vpath); up != nil {
		f, err := up.up.Reopen()
		if err != nil {
			return nil, s.fail("open", loc, err)
		}
		return &handle{s: s, f: f, canRead: true, mayTouch: true, vpath: loc.vpath}, nil
	}
	if err := loc.need(Download); err != nil {
		return nil, err
	}
	// What open asks below (is it a regular file, its size and version)
	// and the first read: on S3, one round trip for both.
	storage.PrefetchRead(loc.root, loc.rel)
	f, err := s.open(loc, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return &handle{s: s, f: f, canRead: true, mayTouch: loc.need(Upload) == nil, vpath: loc.vpath}, nil
}

// openWrite starts an atomic upload for a new file or a truncating open,
// and opens an existing file in place otherwise (resume, write at offset:
// offsets are honoured as sent, which is what resuming clients compute
// from the remote size). With APPEND, as in OpenSSH (O_APPEND), every write
// goes to the end of the file whatever its offset.
func (s *Session) openWrite(p string, pflags uint32) (*handle, error) {
	loc, err := s.resolveForWrite(s.ctx, p)
	if err != nil {
		return nil, err
	}
	switch {
	case loc.virtual():
		return nil, errReadOnly
	case loc.top():
		return nil, errIsDir
	}
	if err := loc.need(Upload); err != nil {
		return nil, err
	}
	// EXCL counts only with CREAT, as O_EXCL in open(2).
	excl := pflags&(fxfCreat|fxfExcl) == fxfCreat|fxfExcl
	if pflags&fxfCreat != 0 {
		// What is asked below, and by the tree's Create: whether the
		// name is taken (by a file or a folder), and whether its folder
		// exists. On S3, one round trip for all of it.
		storage.PrefetchStat(loc.root, loc.rel, path.Dir(loc.rel))
	}
	fi, err := loc.root.Lstat(loc.rel)
	exists := err == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, s.fail("open", loc, err)
	case exists && fi.IsDir():
		return nil, errIsDir
	case exists && excl:
		return nil, errExists
	case !exists && pflags&fxfCreat == 0:
		return nil, errNotFound
	case !exists && loc.dirOnly:
		return nil, errIsDir // "name/" with O_CREAT: EISDIR, nothing created
	case !exists:
		if err := CheckNewName(loc.vpath); err != nil {
			return nil, newNameError(err)
		}
	}
	// The handle reads and writes as OpenSSH's descriptor would: READ
	// and WRITE choose O_RDONLY, O_WRONLY or O_RDWR, and neither is
	// O_RDONLY, whatever else is asked (CREAT, TRUNC, APPEND).
	readFlag := pflags&fxfRead != 0 || pflags&fxfWrite == 0
	noReadRight := readFlag && loc.need(Download) != nil
	canRead, canWrite := readFlag && !noReadRight, pflags&fxfWrite != 0
	flag, appending := os.O_RDWR, pflags&fxfAppend != 0
	if appending {
		flag |= os.O_APPEND
	}

	if exists && pflags&fxfTrunc == 0 {
		f, err := s.open(loc, flag)
		if err != nil {
			return nil, err
		}
		h := &handle{s: s, f: f, canRead: canRead, noReadRight: noReadRight, canWrite: canWrite, mayTouch: true, appending: appending, vpath: loc.vpath,
			rel: loc.rel, folderID: loc.folderID()}
		h.startMeter(loc, fi.Size())
		if h.meter.pool != nil {
			h.counted = countOpen(f)
		}
		return h, nil
	}

	cflag := flag & os.O_APPEND
	if excl {
		cflag |= os.O_EXCL
	}
	f, err := loc.root.Create(loc.rel, cflag)
	if err != nil {
		return nil, s.fail("create", loc, err)
	}
	up := &handle{
		s: s, f: f, up: f, canRead: canRead, noReadRight: noReadRight, canWrite: canWrite, mayTouch: true, appending: appending,
		root: loc.root, rel: loc.rel, vpath: loc.vpath,
		folderID: loc.folderID(),
	}
	up.startMeter(loc, 0)
	s.trackUpload(up)
	return up, nil
}

// exists reports whether loc names anything.
func (s *Session) exists(loc *location) bool {
	_, err := loc.root.Lstat(loc.rel)
	return err == nil
}

// open opens a regular file inside a tree with flag (os.O_RDONLY,
// os.O_RDWR, maybe os.O_APPEND). It stats before opening so that a FIFO or
// device planted on disk is refused instead of blocking.
func (s *Session) open(loc *location, flag int) (storage.File, error) {
	fi, err := loc.root.Stat(loc.rel)
	if err != nil {
		return nil, s.fail("stat", loc, err)
	}
	switch {
	case fi.IsDir():
		return nil, errIsDir
	case !fi.Mode().IsRegular():
		return nil, errNotRegular
	}
	f, err := loc.root.OpenFile(loc.rel, flag)
	if err != nil {
		return nil, s.fail("open", loc, err)
	}
	return f, nil
}

// refuseLink answers SYMLINK, READLINK and hardlink requests: links
// cannot be made through SFTP, and telling the target of one planted on
// disk could reveal host paths.
func (s *Session) refuseLink() error {
	if err := s.allow(s.ctx); err != nil {
		return err
	}
	return errNoLinks
}

// statvfsReadOnly is SSH_FXE_STATVFS_ST_RDONLY of OpenSSH's statvfs
// extension.
const statvfsReadOnly = 0x1

// statVFS is the reply to statvfs@openssh.com.
type statVFS struct {
	bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax uint64
}

// statvfs reports the account's storage capacity (statvfs@openssh.com,
// used by "df"). Virtual directories report read-only.
func (s *Session) statvfs(p string) (*statVFS, error) {
	loc, err := s.resolve(s.ctx, p)
	if err != nil {
		return nil, err
	}
	if loc.entry() && s.openUpload(loc.vpath) == nil {
		if _, err := loc.root.Lstat(loc.rel); err != nil {
			return nil, s.fail("statvfs", loc, err) // as statvfs(2): ENOENT
		}
	}
	sp, err := s.cfg.Storage.FreeSpace(s.cfg.AccountID)
	if err != nil {
		return nil, s.fail("statvfs", loc, err)
	}
	if s.cfg.Quota != nil {
		if err := s.quotaSpace(loc, &sp); err != nil {
			return nil, err
		}
	}
	st := &statVFS{
		bsize: sp.BlockSize, frsize: sp.BlockSize,
		blocks: sp.Blocks, bfree: sp.BlocksFree, bavail: sp.BlocksAvail,
		files: sp.Files, ffree: sp.FilesFree, favail: sp.FilesFree,
		namemax: min(sp.NameMax, MaxNameLen),
	}
	if sp.ReadOnly || loc.virtual() || (loc.place == atFolder && !loc.folder.Rights.Has(Upload)) {
		st.flag |= statvfsReadOnly
	}
	return st, nil
}

// realPath canonicalises a client path; relative paths start at the
// session's start directory. Like OpenSSH it does not require the last
// element to exist, but what leads to it must be a directory.
func (s *Session) realPath(p string) (string, error) {
	if err := s.allow(s.ctx); err != nil {
		return "", err
	}
	vpath, err := s.cleanPath(p)
	if err != nil {
		return "", pathError(err)
	}
	if dir := path.Dir(vpath); dir != vpath {
		loc, err := s.resolve(s.ctx, dir)
		if err != nil {
			return "", err
		}
		if loc.entry() {
			fi, err := loc.root.Stat(loc.rel)
			switch {
			case err != nil:
				return "", s.fail("realpath", loc, err)
			case !fi.IsDir():
				return "", errNotDir
			}
		}
	}
	return vpath, nil
}

// cleanPath is CleanPath with relative paths taken from the start
// directory.
func (s *Session) cleanPath(p string) (string, error) {
	if !path.IsAbs(p) {
		p = s.StartDirectory() + "/" + p
	}
	return CleanPath(p)
}

// list opens a directory listing, and gives the directory's clean path; it
// needs List in a shared folder.
func (s *Session) list(p string) (lister, string, error) {
	ctx := s.ctx
	loc, err := s.resolve(ctx, p)
	if err != nil {
		return nil, "", err
	}
	switch loc.place {
	case atRoot:
		infos := s.dots(loc)
		if !s.cfg.Jailed {
			infos = append(infos, s.virtualDir(MyFiles, 0o755))
		}
		return append(infos, s.virtualDir(SharedMount, 0o555)), loc.vpath, nil
	case atMount:
		folders, err := s.shares.list(ctx)
		if err != nil {
			s.log.Warn("sftp: shared folders unavailable", "err", err)
			return nil, "", errUnavailable
		}
		infos := append(make(fileInfos, 0, 2+len(folders)), s.dots(loc)...)
		for _, f := range folders {
			infos = append(infos, s.virtualDir(f.Name, folderMode(f.Rights)))
		}
		return infos, loc.vpath, nil
	}
	if err := loc.need(List); err != nil {
		return nil, "", err
	}
	fi, err := loc.root.Stat(loc.rel)
	if err != nil {
		return nil, "", s.fail("stat", loc, err)
	}
	if !fi.IsDir() {
		return nil, "", errNotDir
	}
	var mounts fileInfos
	if loc.place == atHome && loc.top() {
		mounts = s.myFilesMounts(ctx, loc.root)
	}
	f, err := loc.root.Open(loc.rel)
	if err != nil {
		return nil, "", s.fail("opendir", loc, err)
	}
	l := &dirLister{f: f, tree: loc.root, rel: loc.rel, mounts: mounts, dots: s.dots(loc), staleBefore: s.cfg.Now().Add(-staleUploadAge)}
	if loc.place == atFolder {
		rights := loc.folder.Rights
		l.show = func(fi fs.FileInfo) fs.FileInfo { return shownMode(fi, rights) }
	}
	return l, loc.vpath, nil
}

// dots are the "." and ".." entries of a listing of loc, which OpenSSH's
// server lists as readdir(3) gives them: the directory and its parent, as
// stat shows them. One that cannot be described is left out.
func (s *Session) dots(loc *location) fileInfos {
	dots := make(fileInfos, 0, 2)
	for _, d := range [...]struct{ name, vpath string }{{".", loc.vpath}, {"..", path.Dir(loc.vpath)}} {
		if fi, err := s.statChecked(d.vpath, true); err == nil {
			dots = append(dots, namedInfo{fi, d.name})
		}
	}
	return dots
}

// myFilesMounts describes the project folders mounted in My Files. While
// the shared folders cannot be read the home lists without them, as its own
// entries do not depend on them.
func (s *Session) myFilesMounts(ctx context.Context, home storage.Tree) fileInfos {
	own, err := s.shares.myFiles(ctx, inHome(home))
	if err != nil {
		s.log.Warn("sftp: shared folders unavailable", "err", err)
		return nil
	}
	infos := make(fileInfos, 0, len(own))
	for _, f := range own {
		infos = append(infos, s.virtualDir(f.Name, folderMode(f.Rights)))
	}
	return infos
}

// stat describes one path. Inside a shared folder it needs List or
// Download: a user who may fetch a known file may also see its size.
func (s *Session) stat(p string, follow bool) (fs.FileInfo, error) {
	if err := s.allow(s.ctx); err != nil {
		return nil, err
	}
	return s.statChecked(p, follow)
}

// statChecked is stat within a request that has already asked the Gate
// (a listing describing its "." and ".."). Asking again could find the
// cached yes expired in between and a refusal: the refusal ends the
// session, but the request, answered as if nothing happened, would leave
// the client with a handle and then a dropped connection instead of
// "permission denied".
func (s *Session) statChecked(p string, follow bool) (fs.FileInfo, error) {
	loc, err := s.locate(s.ctx, p)
	if err != nil {
		return nil, err
	}
	switch {
	case loc.place == atRoot:
		return s.virtualDir("/", 0o555), nil
	case loc.place == atMount:
		return s.virtualDir(SharedMount, 0o555), nil
	case loc.top():
		fi, err := loc.root.Stat(".")
		if err != nil {
			return nil, s.fail("stat", loc, err)
		}
		if loc.place == atFolder {
			return s.virtualDir(loc.name(), folderMode(loc.folder.Rights)), nil
		}
		return namedInfo{fi, loc.name()}, nil
	}
	// The session's own upload in progress is what its name stands for,
	// even where the user may only upload.
	if up := s.openUpload(loc.vpath); up != nil {
		if fi, err := up.f.Stat(); err == nil {
			return namedInfo{fi, loc.name()}, nil
		}
	}
	if err := loc.needAny(List | Download); err != nil {
		return nil, err
	}
	var fi fs.FileInfo
	if follow {
		fi, err = loc.root.Stat(loc.rel)
	} else {
		fi, err = loc.root.Lstat(loc.rel)
	}
	if err != nil {
		return nil, s.fail("stat", loc, err)
	}
	if loc.place == atFolder {
		fi = shownMode(fi, loc.folder.Rights)
	}
	return fi, nil
}

// setstat applies times and size (truncate); it needs Upload in a shared
// folder. Permissions and ownership are accepted and ignored: the storage
// decides modes and owners, and refusing them would fail uploads of
// clients that preserve attributes (OpenSSH "put -p", WinSCP, FileZilla).
func (s *Session) setstat(p string, a attrs) error {
	loc, err := s.resolve(s.ctx, p)
	if err != nil {
		return err
	}
	if loc.virtual() || (loc.place == atFolder && loc.top()) {
		return errReadOnly
	}
	if err := loc.need(Upload); err != nil {
		return err
	}
	up := s.openUpload(loc.vpath)
	setSize, setTimes := a.flags&attrSize != 0, a.flags&attrACModTime != 0
	if setSize {
		if a.size > math.MaxInt64 {
			return errInvalid
		}
		if err := s.truncate(loc, up, int64(a.size)); err != nil {
			return err
		}
	}
	if setTimes {
		atime, mtime := time.Unix(int64(a.atime), 0), time.Unix(int64(a.mtime), 0)
		var err error
		if up != nil {
			err = up.f.Chtimes(atime, mtime)
		} else {
			err = loc.root.Chtimes(loc.rel, atime, mtime)
		}
		if err != nil {
			return s.fail("chtimes", loc, err)
		}
	}
	if !setSize && !setTimes {
		var err error
		if up != nil {
			_, err = up.f.Stat()
		} else {
			_, err = loc.root.Lstat(loc.rel)
		}
		if err != nil {
			return s.fail("stat", loc, err)
		}
	}
	return nil
}

func (s *Session) truncate(loc *location, up *handle, size int64) error {
	if up != nil {
		if err := up.CheckWrite(size); err != nil {
			return err
		}
		if err := up.f.Truncate(size); err != nil {
			return s.fail("truncate", loc, err)
		}
		up.resized(size)
		return nil
	}
	f, err := s.open(loc, os.O_RDWR)
	if err != nil {
		return err
	}
	var m meter // an extension takes room as a write would
	if tree := s.tree(loc); tree != "" {
		m.pool = s.pool(tree)
	}
	var growth int64
	var c *counted
	if fi, serr := f.Stat(); serr == nil && m.pool != nil {
		growth = size - fi.Size()
		c = countOpen(f)
	}
	if growth > 0 {
		if m.held, m.credit, err = m.pool.take(growth); err != nil {
			// What other handles wrote to the file is counted still.
			delta, _ := closeInPlace(f, c, 0)
			m.pool.giveBack(m.held, m.credit, delta)
			return err
		}
	}
	err = f.Truncate(size)
	if err != nil {
		growth = 0
	}
	// On an object store, the new size is in place only once closed.
	delta, cerr := closeInPlace(f, c, growth)
	if err == nil {
		err = cerr
	}
	if m.pool != nil {
		m.pool.giveBack(m.held, m.credit, delta)
	}
	if err != nil {
		return s.fail("truncate", loc, err)
	}
	return nil
}

// mkdir creates a directory; it needs Mkdir in a shared folder.
func (s *Session) mkdir(p string) error {
	loc, err := s.resolveForWrite(s.ctx, p)
	if err != nil {
		return err
	}
	if loc.virtual() || loc.top() {
		// They exist: FAILURE as OpenSSH's EEXIST, so makedirs-style
		// clients walk on through them.
		return errExists
	}
	if err := loc.need(Mkdir); err != nil {
		return err
	}
	if err := CheckNewName(loc.vpath); err != nil {
		return newNameError(err)
	}
	if err := loc.root.Mkdir(loc.rel); err != nil {
		return s.fail("mkdir", loc, err)
	}
	return nil
}

// remove deletes a file (rm) or an empty directory (rmdir); both need
// Delete in a shared folder.
func (s *Session) remove(p string, dir bool) error {
	loc, err := s.resolve(s.ctx, p)
	if err != nil {
		return err
	}
	switch {
	case loc.top() && !dir:
		return errIsDir // a directory, as unlink(2) of one
	case !loc.entry():
		return errReadOnly
	}
	if err := loc.need(Delete); err != nil {
		return err
	}
	defer lockNames(nameKey{s.tree(loc), loc.rel})()
	if !dir && s.removeUpload(loc) {
		return nil
	}
	fi, err := loc.root.Lstat(loc.rel)
	if err != nil {
		return s.fail("remove", loc, err)
	}
	switch {
	case dir && !fi.IsDir():
		return errNotDir
	case !dir && fi.IsDir():
		return errIsDir
	}
	err = loc.root.Remove(loc.rel)
	if dir && errors.Is(err, syscall.ENOTEMPTY) && clearDeadUploads(loc.root, loc.rel) {
		err = loc.root.Remove(loc.rel)
	}
	if err != nil {
		return s.fail("remove", loc, err)
	}
	if fi.Mode().IsRegular() {
		s.settle(s.tree(loc), 0, -goneOf(fi).freed())
	}
	return nil
}

// clearDeadUploads removes from the directory rel the hidden files of
// uploads that nothing holds any more (storage.LocalTree's
// ClearDeadUploads), which keep a folder that looks empty from being
// removed; it reports whether it removed any.
func clearDeadUploads(root storage.Tree, rel string) bool {
	c, ok := root.(interface{ ClearDeadUploads(string) (bool, error) })
	if !ok {
		return false
	}
	removed, _ := c.ClearDeadUploads(rel)
	return removed
}

// removeUpload removes the session's own upload in progress at loc, if
// there is one, as unlinking the file being written does in OpenSSH: the
// upload is discarded at close (which succeeds), and what the name held
// before (the file a truncating open was replacing) is removed now.
func (s *Session) removeUpload(loc *location) bool {
	s.mu.Lock()
	up := s.uploads[loc.vpath]
	if up != nil {
		delete(s.uploads, loc.vpath)
		up.removed.Store(true)
	}
	s.mu.Unlock()
	if up == nil {
		return false
	}
	gone := fileAt(loc.root, loc.rel)
	switch err := loc.root.Remove(loc.rel); {
	case err == nil:
		s.settle(s.tree(loc), 0, -gone.freed())
	case !errors.Is(err, fs.ErrNotExist):
		s.log.Warn("sftp: remove the file an upload replaces", "path", loc.vpath, "err", err)
	}
	return true
}

// rename moves an entry, also between My Files and shared folders; it needs
// Rename on both sides, and Delete where it replaces an existing target.
// Plain SFTP rename never replaces; posix-rename does.
func (s *Session) rename(from, to string, replace bool) error {
	ctx := s.ctx
	src, err := s.resolve(ctx, from)
	if err != nil {
		return err
	}
	dst, err := s.resolveForWrite(ctx, to)
	if err != nil {
		return err
	}
	switch {
	case src.top():
		return errBusy // as rename(2) of "." or a mount point
	case !src.entry() || dst.virtual():
		return errReadOnly
	}
	if dst.top() {
		return errExists
	}
	if err := src.need(Rename); err != nil {
		return err
	}
	if err := dst.need(Rename); err != nil {
		return err
	}
	if err := CheckNewName(dst.vpath); err != nil {
		return newNameError(err)
	}
	if src.sameEntry(dst) {
		// rename(2) onto the entry itself, by any of its paths: nothing
		// moves, nothing is replaced or freed. posix-rename succeeds, as
		// in OpenSSH; plain rename finds its target there. What is not
		// there (nor being uploaded by this session) is not found.
		if s.openUpload(src.vpath) == nil && !s.exists(src) {
			return errNotFound
		}
		if replace {
			return nil
		}
		return errExists
	}
	if replace && dst.place == atFolder {
		if _, err := dst.root.Lstat(dst.rel); err == nil {
			if err := dst.need(Delete); err != nil {
				return err
			}
		}
	}
	defer lockNames(nameKey{s.tree(src), src.rel}, nameKey{s.tree(dst), dst.rel})()
	if done, err := s.renameUpload(src, dst, replace); done {
		return err
	}
	moved, err := s.chargeMove(src, dst, replace)
	if err != nil {
		return err
	}
	if err := src.root.Move(src.rel, dst.root, dst.rel, replace); err != nil {
		moved(false)
		return s.fail("rename", src, err)
	}
	moved(true)
	return nil
}

// renameUpload renames the session's own upload in progress at src, if
// there is one (done then), as renaming the file being written does in
// OpenSSH: what src holds on disk (the file a truncating open is
// replacing) moves to dst now, and the upload lands at dst when closed.
// Its hidden file moves next to dst, so that it is renamed into place
// within one directory. Until then, others see no partial file. An
// upload in progress stays in its tree (its quota is counted there): a
// rename to another tree answers FAILURE until it is closed.
func (s *Session) renameUpload(src, dst *location, replace bool) (done bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up := s.uploads[src.vpath]
	switch {
	case up == nil:
		return false, nil
	case src.vpath == dst.vpath:
		return true, nil
	case up.root != dst.root:
		return true, errUploadElsewhere
	}
	if _, busy := s.uploads[dst.vpath]; !replace && (busy || s.exists(dst)) {
		return true, errExists
	}
	if s.exists(src) {
		moved, err := s.chargeMove(src, dst, replace)
		if err != nil {
			return true, err
		}
		err = src.root.Move(src.rel, dst.root, dst.rel, replace)
		moved(err == nil)
		if err != nil {
			return true, s.fail("rename", src, err)
		}
	}
	if err := up.up.Rename(dst.rel); err != nil {
		return true, s.fail("rename", src, err)
	}
	delete(s.uploads, src.vpath)
	up.rel, up.vpath = dst.rel, dst.vpath
	s.uploads[dst.vpath] = up
	return true, nil
}

// resolveForWrite is resolve for paths about to be created: a new name
// directly in "/" or the mount point is refused as read-only rather than
// reported missing (so "/My Files" looks the same to a jailed user).
func (s *Session) resolveForWrite(ctx context.Context, p string) (*location, error) {
	loc, err := s.resolve(ctx, p)
	if err == errNotFound {
		if vpath, cerr := s.cleanPath(p); cerr == nil {
			if dir := path.Dir(vpath); dir == "/" || dir == SharedMountPath {
				return nil, errReadOnly
			}
		}
	}
	return loc, err
}

func (s *Session) virtualDir(name string, mode fs.FileMode) dirInfo {
	return dirInfo{name: name, mode: mode, mod: s.start}
}

// folderMode shows a shared folder as writable when the user may change it.
func folderMode(r Rights) fs.FileMode {
	if r&(Upload|Mkdir|Delete|Rename) != 0 {
		return 0o755
	}
	return 0o555
}
