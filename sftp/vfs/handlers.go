package vfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/storage"
)

// handlers serves pkg/sftp's request server for a session. pkg/sftp has
// already joined relative paths with the start directory and resolved ".."
// lexically; resolve still cleans every path again, which also refuses the
// NUL, backslash and length tricks pkg/sftp lets through.
type handlers struct{ s *Session }

var (
	_ sftp.FileReader           = handlers{}
	_ sftp.OpenFileWriter       = handlers{}
	_ sftp.PosixRenameFileCmder = handlers{}
	_ sftp.StatVFSFileCmder     = handlers{}
	_ sftp.LstatFileLister      = handlers{}
	_ sftp.RealPathFileLister   = handlers{}
	_ sftp.ReadlinkFileLister   = handlers{}
)

func (h handlers) sftp() sftp.Handlers {
	return sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
}

// Fileread opens a file for download: it needs Download in a shared folder.
func (h handlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	s := h.s
	loc, err := s.resolve(r.Context(), r.Filepath)
	if err != nil {
		return nil, err
	}
	if loc.virtual() || loc.top() {
		return nil, errIsDir
	}
	if err := loc.need(Download); err != nil {
		return nil, err
	}
	f, err := s.open(loc, false)
	if err != nil {
		return nil, err
	}
	return &handle{s: s, f: f, canRead: true, vpath: loc.vpath}, nil
}

// Filewrite opens a file for upload: it needs Upload in a shared folder.
func (h handlers) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return h.s.openWrite(r)
}

// OpenFile opens a file for reading and writing; reads through it also
// need Download in a shared folder.
func (h handlers) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	return h.s.openWrite(r)
}

// openWrite starts an atomic upload for a new file or a truncating open,
// and opens an existing file in place otherwise (resume, write at offset,
// append: offsets are honoured as sent, which is what resuming clients
// compute from the remote size).
func (s *Session) openWrite(r *sftp.Request) (*handle, error) {
	loc, err := s.resolveForWrite(r.Context(), r.Filepath)
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
	flags := r.Pflags()
	fi, err := loc.root.Lstat(loc.rel)
	exists := err == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, s.fail("open", loc, err)
	case exists && fi.IsDir():
		return nil, errIsDir
	case exists && flags.Excl:
		return nil, errExists
	case !exists && !flags.Creat:
		return nil, errNotFound
	}
	canRead := flags.Read && loc.need(Download) == nil

	if exists && !flags.Trunc {
		f, err := s.open(loc, true)
		if err != nil {
			return nil, err
		}
		return &handle{s: s, f: f, canRead: canRead, vpath: loc.vpath}, nil
	}

	tmp := tempName(loc.rel)
	f, err := loc.root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, s.fail("create", loc, err)
	}
	up := &handle{
		s: s, f: f, canRead: canRead,
		root: loc.root, rel: loc.rel, tmp: tmp, vpath: loc.vpath, excl: flags.Excl,
	}
	s.trackUpload(up)
	return up, nil
}

// open opens a regular file inside a tree. It stats before opening so
// that a FIFO or device planted on disk is refused instead of blocking.
func (s *Session) open(loc *location, write bool) (*os.File, error) {
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
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := loc.root.OpenFile(loc.rel, flag, 0)
	if err != nil {
		return nil, s.fail("open", loc, err)
	}
	return f, nil
}

// Filecmd runs the commands that change the tree.
func (h handlers) Filecmd(r *sftp.Request) error {
	s := h.s
	switch r.Method {
	case "Setstat":
		return s.setstat(r)
	case "Rename":
		return s.rename(r, false)
	case "Rmdir":
		return s.remove(r, true)
	case "Remove":
		return s.remove(r, false)
	case "Mkdir":
		return s.mkdir(r)
	case "Symlink", "Link":
		if err := s.allow(r.Context()); err != nil {
			return err
		}
		return errNoLinks
	}
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename renames, replacing an existing target (posix-rename@openssh.com).
func (h handlers) PosixRename(r *sftp.Request) error { return h.s.rename(r, true) }

// statvfsReadOnly is SSH_FXE_STATVFS_ST_RDONLY of OpenSSH's statvfs
// extension; pkg/sftp does not name it.
const statvfsReadOnly = 0x1

// StatVFS reports the account's storage capacity (statvfs@openssh.com,
// used by "df"). Virtual directories report read-only.
func (h handlers) StatVFS(r *sftp.Request) (*sftp.StatVFS, error) {
	s := h.s
	loc, err := s.resolve(r.Context(), r.Filepath)
	if err != nil {
		return nil, err
	}
	sp, err := s.cfg.Storage.FreeSpace(s.cfg.AccountID)
	if err != nil {
		return nil, s.fail("statvfs", loc, err)
	}
	st := &sftp.StatVFS{
		Bsize: sp.BlockSize, Frsize: sp.BlockSize,
		Blocks: sp.Blocks, Bfree: sp.BlocksFree, Bavail: sp.BlocksAvail,
		Files: sp.Files, Ffree: sp.FilesFree, Favail: sp.FilesFree,
		Namemax: min(sp.NameMax, MaxNameLen),
	}
	if sp.ReadOnly || loc.virtual() || (loc.place == atFolder && !loc.folder.Rights.Has(Upload)) {
		st.Flag |= statvfsReadOnly
	}
	return st, nil
}

// Filelist serves list and stat.
func (h handlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	switch r.Method {
	case "List":
		return h.s.list(r)
	case "Stat":
		return h.s.stat(r, true)
	case "Readlink":
		_, err := h.Readlink(r.Filepath)
		return nil, err
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// Lstat is stat without following a final symbolic link.
func (h handlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) { return h.s.stat(r, false) }

// RealPath canonicalises a client path; relative paths start at the
// session's start directory. Like OpenSSH it does not require the path to
// exist; what does not exist fails on use.
func (h handlers) RealPath(p string) (string, error) {
	s := h.s
	if err := s.allow(s.ctx); err != nil {
		return "", err
	}
	if !path.IsAbs(p) {
		p = s.StartDirectory() + "/" + p
	}
	vpath, err := CleanPath(p)
	if err != nil {
		return "", pathError(err)
	}
	return vpath, nil
}

// Readlink is refused: links cannot be made through SFTP, and telling the
// target of one planted on disk could reveal host paths.
func (h handlers) Readlink(string) (string, error) {
	if err := h.s.allow(h.s.ctx); err != nil {
		return "", err
	}
	return "", errNoLinks
}

// list opens a directory listing; it needs List in a shared folder.
func (s *Session) list(r *sftp.Request) (sftp.ListerAt, error) {
	ctx := r.Context()
	loc, err := s.resolve(ctx, r.Filepath)
	if err != nil {
		return nil, err
	}
	switch loc.place {
	case atRoot:
		var infos fileInfos
		if !s.cfg.Jailed {
			infos = append(infos, s.virtualDir(MyFiles, 0o755))
		}
		return append(infos, s.virtualDir(SharedMount, 0o555)), nil
	case atMount:
		folders, err := s.shares.list(ctx)
		if err != nil {
			s.log.Warn("sftp: shared folders unavailable", "err", err)
			return nil, errUnavailable
		}
		infos := make(fileInfos, 0, len(folders))
		for _, f := range folders {
			infos = append(infos, s.virtualDir(f.Name, folderMode(f.Rights)))
		}
		return infos, nil
	}
	if err := loc.need(List); err != nil {
		return nil, err
	}
	fi, err := loc.root.Stat(loc.rel)
	if err != nil {
		return nil, s.fail("stat", loc, err)
	}
	if !fi.IsDir() {
		return nil, errNotDir
	}
	var mounts fileInfos
	if loc.place == atHome && loc.top() {
		mounts = s.myFilesMounts(ctx, loc.root)
	}
	f, err := loc.root.Open(loc.rel)
	if err != nil {
		return nil, s.fail("opendir", loc, err)
	}
	return &dirLister{f: f, mounts: mounts, staleBefore: s.cfg.Now().Add(-staleUploadAge)}, nil
}

// myFilesMounts describes the project folders mounted in My Files. While
// the shared folders cannot be read the home lists without them, as its own
// entries do not depend on them.
func (s *Session) myFilesMounts(ctx context.Context, home *os.Root) fileInfos {
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
func (s *Session) stat(r *sftp.Request, follow bool) (sftp.ListerAt, error) {
	loc, err := s.resolve(r.Context(), r.Filepath)
	if err != nil {
		return nil, err
	}
	switch {
	case loc.place == atRoot:
		return fileInfos{s.virtualDir("/", 0o555)}, nil
	case loc.place == atMount:
		return fileInfos{s.virtualDir(SharedMount, 0o555)}, nil
	case loc.top():
		fi, err := loc.root.Stat(".")
		if err != nil {
			return nil, s.fail("stat", loc, err)
		}
		if loc.place == atFolder {
			return fileInfos{s.virtualDir(loc.name(), folderMode(loc.folder.Rights))}, nil
		}
		return fileInfos{namedInfo{fi, loc.name()}}, nil
	}
	// The session's own upload in progress is what its name stands for,
	// even where the user may only upload.
	if up := s.openUpload(loc.vpath); up != nil {
		if fi, err := up.f.Stat(); err == nil {
			return fileInfos{namedInfo{fi, loc.name()}}, nil
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
	return fileInfos{fi}, nil
}

// setstat applies times and size (truncate); it needs Upload in a shared
// folder. Permissions and ownership are accepted and ignored: the storage
// decides modes and owners, and refusing them would fail uploads of
// clients that preserve attributes (OpenSSH "put -p", WinSCP, FileZilla).
func (s *Session) setstat(r *sftp.Request) error {
	loc, err := s.resolve(r.Context(), r.Filepath)
	if err != nil {
		return err
	}
	if loc.virtual() || (loc.place == atFolder && loc.top()) {
		return errReadOnly
	}
	if err := loc.need(Upload); err != nil {
		return err
	}
	flags, attrs := r.AttrFlags(), r.Attributes()
	target, up := loc.rel, s.openUpload(loc.vpath)
	if up != nil {
		target = up.tmp
	}
	if flags.Size {
		if err := s.truncate(loc, up, int64(attrs.Size)); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		if err := loc.root.Chtimes(target, attrs.AccessTime(), attrs.ModTime()); err != nil {
			return s.fail("chtimes", loc, err)
		}
	}
	if !flags.Size && !flags.Acmodtime {
		if _, err := loc.root.Lstat(target); err != nil {
			return s.fail("stat", loc, err)
		}
	}
	return nil
}

func (s *Session) truncate(loc *location, up *handle, size int64) error {
	if up != nil {
		if err := up.f.Truncate(size); err != nil {
			return s.fail("truncate", loc, err)
		}
		return nil
	}
	f, err := s.open(loc, true)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.fail("truncate", loc, err)
	}
	return nil
}

// mkdir creates a directory; it needs Mkdir in a shared folder.
func (s *Session) mkdir(r *sftp.Request) error {
	loc, err := s.resolveForWrite(r.Context(), r.Filepath)
	if err != nil {
		return err
	}
	switch {
	case loc.virtual():
		return errReadOnly
	case loc.top():
		return errExists
	}
	if err := loc.need(Mkdir); err != nil {
		return err
	}
	if err := loc.root.Mkdir(loc.rel, dirMode); err != nil {
		return s.fail("mkdir", loc, err)
	}
	return nil
}

// remove deletes a file (rm) or an empty directory (rmdir); both need
// Delete in a shared folder.
func (s *Session) remove(r *sftp.Request, dir bool) error {
	loc, err := s.resolve(r.Context(), r.Filepath)
	if err != nil {
		return err
	}
	if !loc.entry() {
		return errReadOnly
	}
	if err := loc.need(Delete); err != nil {
		return err
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
	if err := loc.root.Remove(loc.rel); err != nil {
		return s.fail("remove", loc, err)
	}
	return nil
}

// rename moves an entry, also between My Files and shared folders; it needs
// Rename on both sides, and Delete where it replaces an existing target.
// Plain SFTP rename never replaces; posix-rename does.
func (s *Session) rename(r *sftp.Request, replace bool) error {
	ctx := r.Context()
	src, err := s.resolve(ctx, r.Filepath)
	if err != nil {
		return err
	}
	dst, err := s.resolveForWrite(ctx, r.Target)
	if err != nil {
		return err
	}
	if !src.entry() || dst.virtual() {
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
	if replace && dst.place == atFolder {
		if _, err := dst.root.Lstat(dst.rel); err == nil {
			if err := dst.need(Delete); err != nil {
				return err
			}
		}
	}
	if err := storage.Move(src.root, src.rel, dst.root, dst.rel, replace); err != nil {
		return s.fail("rename", src, err)
	}
	return nil
}

// resolveForWrite is resolve for paths about to be created: a new name
// directly in "/" or the mount point is refused as read-only rather than
// reported missing (so "/My Files" looks the same to a jailed user).
func (s *Session) resolveForWrite(ctx context.Context, p string) (*location, error) {
	loc, err := s.resolve(ctx, p)
	if err == errNotFound {
		if vpath, cerr := CleanPath(p); cerr == nil {
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
