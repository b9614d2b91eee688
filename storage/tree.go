package storage

import (
	"errors"
	"io"
	"io/fs"
	"time"
)

// This file is the contract between the SFTP layer (sftp/vfs, sftp) and a
// storage backend: the local disk (local.go, over os.Root) and object stores
// (storage/s3) implement it, and storage/storagetest checks it. A backend
// keeps the local disk's behaviour wherever it can; where it cannot, it says
// so with an *UnsupportedError, which the SFTP layer turns into
// SSH_FX_OP_UNSUPPORTED with the error's Reason as the message.
//
// Names. Every name a Tree method takes is a clean, slash-separated path
// relative to the tree's top, as path.Clean leaves it: "." is the top, no
// element is "..", none is empty, and the name never starts with "/". The
// caller (sftp/vfs's CleanPath) guarantees this; a backend may still refuse
// anything else (wrapping fs.ErrInvalid or fs.ErrPermission), and must never
// let a name reach outside the tree.
//
// Errors. Methods return errors that errors.Is matches against the io/fs
// sentinels, as *os.File and *os.Root do, so that the SFTP status of a
// failure is the same on every backend:
//
//   - fs.ErrNotExist: the name (or a directory leading to it) is missing;
//   - fs.ErrExist: it exists and must not (Mkdir, a no-replace Move, an
//     exclusive upload);
//   - fs.ErrPermission: the storage refuses access;
//   - syscall.ENOTEMPTY: Remove of a non-empty directory, or a replacing
//     Move onto one;
//   - syscall.ENOTDIR, syscall.EISDIR: a file where a directory is needed,
//     and the reverse;
//   - syscall.ENOSPC or syscall.EDQUOT: the storage is full;
//   - ErrUnsupported (through an *UnsupportedError): the backend cannot do
//     this, in general or in this case;
//   - ErrChanged: the file was replaced since it was opened (a backend
//     that reads and rewrites files by version, an object store);
//   - ErrBusy: no resource is free for the transfer now (an object
//     store's memory for upload parts); the client may try again.
//
// Anything else is reported to the client as a plain failure and logged.

// ErrChanged is what a backend that reads and rewrites whole versions of a
// file (an object store) fails with when the file was replaced since it
// was opened: a read would mix two versions, and a write in place would
// undo the other change.
var ErrChanged = errors.New("the file was changed by someone else since it was opened")

// ErrBusy is what a backend fails with when it has no resource free for a
// transfer now (an object store's memory for upload parts) and the client
// should try again later.
var ErrBusy = errors.New("the server has no memory free for this transfer now: try again later")

// ErrUnavailable is what a backend fails with when its store does not
// answer (an object store that stopped moving data, through retries): the
// same request may succeed later.
var ErrUnavailable = errors.New("the storage is not answering now: try again later")

// ErrUnsupported matches every error by which a backend says it cannot do
// an operation (errors.Is(err, ErrUnsupported)). It also matches
// errors.ErrUnsupported. Backends return an *UnsupportedError rather than
// ErrUnsupported itself, so that the client learns why.
var ErrUnsupported = unsupported{}

type unsupported struct{}

func (unsupported) Error() string        { return "storage: operation not supported" }
func (unsupported) Is(target error) bool { return target == errors.ErrUnsupported }

// UnsupportedError is what a backend returns for an operation it cannot do,
// e.g. a random write outside the part of an object upload being written.
// Reason is shown to the SFTP client as it is: one short sentence, in the
// user's terms, without internal names ("random writes are not supported
// on this storage: write the file from start to end").
type UnsupportedError struct {
	Op     string // the operation, for logs ("write", "rename", …)
	Reason string
}

// Unsupported returns an *UnsupportedError.
func Unsupported(op, reason string) error { return &UnsupportedError{Op: op, Reason: reason} }

func (e *UnsupportedError) Error() string { return "storage: " + e.Op + ": " + e.Reason }

// Is makes the error match ErrUnsupported and errors.ErrUnsupported.
func (e *UnsupportedError) Is(target error) bool {
	return target == ErrUnsupported || target == errors.ErrUnsupported
}

// Tree is one file tree: a user's home or a project folder. It is safe for
// concurrent use; the caller closes it when done (Close), after closing the
// files it opened.
type Tree interface {
	// Stat describes name, following a symbolic link in its last element
	// (as os.Stat). Backends without links behave as Lstat. A directory
	// reports IsDir and a mode with fs.ModeDir; a file a regular mode and
	// its size in bytes. ModTime is the last modification; a backend that
	// keeps none reports the time the file was written.
	Stat(name string) (fs.FileInfo, error)

	// Lstat is Stat without following a symbolic link in the last element.
	Lstat(name string) (fs.FileInfo, error)

	// Open opens name for reading: a regular file, or a directory to list
	// with File.Readdir.
	Open(name string) (File, error)

	// OpenFile opens an existing regular file with flag: os.O_RDONLY,
	// os.O_WRONLY or os.O_RDWR, maybe with os.O_APPEND (every Write goes
	// to the end; WriteAt is then not used). It never creates a file: new
	// files are written through Create. A file opened for writing in place
	// (resume, append, overwrite at an offset) may have restrictions on an
	// object store: see File.WriteAt and File.Close.
	OpenFile(name string, flag int) (File, error)

	// Create starts an atomic upload of name: what is written to the
	// returned Upload is invisible at name (Stat, Open, listings) until
	// Commit, which puts it in place in one step, replacing what name held
	// unless the upload is exclusive. Until then name keeps what it had.
	// The directory of name must exist.
	//
	// flag is 0 or a combination of os.O_EXCL and os.O_APPEND. With
	// os.O_EXCL, Create fails with fs.ErrExist if name exists or another
	// exclusive upload of name is in progress (in any session, on any node
	// sharing the storage), and Commit fails with fs.ErrExist if name was
	// created in the meantime. With os.O_APPEND every Write goes to the
	// end of what was written and WriteAt is not used; without it only
	// WriteAt is.
	Create(name string, flag int) (Upload, error)

	// Mkdir creates a directory; fs.ErrExist if name exists. The storage
	// decides its mode. An empty directory must survive (an object store
	// keeps a marker object).
	Mkdir(name string) error

	// Remove removes a file or an empty directory: syscall.ENOTEMPTY for
	// a directory that is not empty.
	Remove(name string) error

	// Chtimes sets the access and modification times. A backend that
	// cannot keep them returns nil and keeps its own (clients that copy
	// times, "put -p", must not fail for it); see the backend's docs.
	Chtimes(name string, atime, mtime time.Time) error

	// Move renames name to newName in to, a tree of the same Storage
	// (possibly this one): a user's home and a project folder of one
	// account may exchange entries. It moves files and whole directories.
	// With replace false it fails with fs.ErrExist if newName exists and
	// never replaces an entry, even when one appears concurrently; with
	// replace true it replaces a file, or an empty directory with a
	// directory (POSIX rename). On the local disk it is one rename(2). An
	// object store copies and deletes, and may refuse a directory above a
	// documented size with an *UnsupportedError; a Move that fails leaves
	// name as it was, or, where a backend cannot promise that, says so in
	// its docs.
	Move(name string, to Tree, newName string, replace bool) error

	// Close releases the tree. Files and uploads opened from it must be
	// closed first.
	Close() error
}

// File is an open file, or a directory opened with Tree.Open to list it.
// Its methods may be called from several goroutines, as those of *os.File.
type File interface {
	// ReadAt reads len(p) bytes at off, as io.ReaderAt: io.EOF at the
	// end. Sequential reads (off growing by what the last call returned)
	// are what clients do; an object store can read ahead for them.
	io.ReaderAt

	// WriteAt writes at off, as io.WriterAt; the file grows as needed
	// (a gap reads as zeros). The local disk writes anywhere. An object
	// store writing a new object may accept only writes at the current
	// end, or within the part it is writing, and refuse others with an
	// *UnsupportedError; one writing an existing object may refuse
	// writes anywhere but at its end.
	io.WriterAt

	// Write appends: it is used only on files opened (or uploads
	// created) with os.O_APPEND, and writes at the end of the file,
	// whatever was written or truncated before.
	io.Writer

	// Stat describes the open file: for an upload, what has been written
	// so far (its size is the highest offset written).
	Stat() (fs.FileInfo, error)

	// Truncate changes the size, as ftruncate(2). An object store may
	// refuse sizes other than the current size or 0 with an
	// *UnsupportedError.
	Truncate(size int64) error

	// Chtimes sets the times of the open file (futimes(2)); see
	// Tree.Chtimes.
	Chtimes(atime, mtime time.Time) error

	// Sync makes what was written durable where the backend has such a
	// step (fsync(2)); a no-op where every write already is.
	Sync() error

	// Readdir lists a directory opened with Tree.Open, n entries at a
	// time, as (*os.File).Readdir with n > 0: io.EOF after the last.
	// Entries come in no particular order; "." and ".." are not listed.
	// Symbolic links are described, not followed (as Lstat).
	Readdir(n int) ([]fs.FileInfo, error)

	// Close releases the file. For a file opened for writing in place on a
	// backend that cannot write in place (an object store), Close is when
	// what was written becomes visible, and an error from it means it did
	// not.
	Close() error
}

// Upload is a file being written by Tree.Create. It is a File open for
// reading and writing (its ReadAt sees what was written; Readdir fails);
// what it holds appears at its name only at Commit.
type Upload interface {
	File

	// Commit puts what was written in place at the upload's name, as one
	// step: readers see the old content or the new one, never part of
	// it. It makes the data durable first (Sync). An exclusive upload
	// (os.O_EXCL, see Tree.Create) fails with fs.ErrExist if the name
	// exists by now.
	// After Commit, whatever it returned, only Close may be called.
	Commit() error

	// Close ends the upload. Without a successful Commit it discards what
	// was written, leaving nothing behind (no temporary object, no
	// incomplete multipart upload); an error then says only that the
	// cleanup failed. After a successful Commit it finishes what makes the
	// new content durable where the backend has such a step (the local
	// disk fsyncs the directory); an error then says the content is in
	// place but might not survive a crash of the host.
	Close() error

	// Rename changes the name the upload lands at on Commit, within its
	// tree (the client renamed the file it is writing). Its directory
	// must exist. An exclusive upload stays exclusive.
	Rename(newName string) error

	// Reopen opens what has been written so far for reading, as a
	// separate File (the uploader downloads the file it is writing). A
	// backend that cannot may return an *UnsupportedError.
	Reopen() (File, error)
}

// Optional capabilities: fast paths the SFTP layer uses when a File or Tree
// has them, falling back to the portable way otherwise.

// RangeCopier is implemented by Files that copy from another File of the
// same backend without the data passing through the caller: the local
// disk's copy_file_range(2) (a reflink on file systems that share blocks),
// an object store's server-side copy.
type RangeCopier interface {
	// CopyRange copies up to n bytes of src at srcOff to the receiver at
	// dstOff, and returns how many it copied: 0 at src's end. An error
	// matching ErrUnsupported means this pair cannot be copied so (other
	// file systems, another backend); the caller then copies through a
	// buffer.
	CopyRange(src File, srcOff, dstOff, n int64) (int, error)
}

// WritebackStarter is implemented by Files whose written data the backend
// can start to make durable before Sync, so that Sync does not find it all
// pending at once (the local disk's sync_file_range(2)). It is a hint: it
// returns nothing and may do nothing.
type WritebackStarter interface {
	StartWriteback()
}

// FileSizer is implemented by Trees that tell a regular file's size with
// less work than Lstat: an object store asks for the object alone, where
// Lstat must also ask, for a missing object, whether the name is a folder.
// The SFTP layer's quota asks it of every name an upload, a rename or a
// removal replaces.
type FileSizer interface {
	// FileSize returns the size of the regular file at name, and false
	// if there is none: nothing there, a folder, or no answer.
	FileSize(name string) (int64, bool)
}

// StatPrefetcher is implemented by Trees that answer a stat from a Memo
// and can ask the store about several names at once: a request that is
// about to ask about each of them in turn (an upload's open asks whether
// the name is taken, then whether its folder exists) waits for one round
// trip instead of one per name. Outside a span of the tree's Memo it does
// nothing, since nothing learned would be kept.
type StatPrefetcher interface {
	// PrefetchStat asks about names, the first expected to be missing
	// (every question about it is asked at once), and returns when the
	// answers are kept.
	PrefetchStat(names ...string)
}

// ReadPrefetcher is implemented by Trees that answer a stat from a Memo and
// can learn a file's state and its first bytes in one request: a request
// about to open name for reading (and to stat it first) then waits for one
// round trip to the store, and the first read for none. Outside a span of
// the tree's Memo it does nothing.
type ReadPrefetcher interface {
	PrefetchRead(name string)
}

// Unheard returns tree giving up, once gone is closed, the waits it can
// end early: work whose answer nobody is left to hear (an upload on S3
// waiting for memory fails then, and is discarded as a cut upload is).
// Trees without such waits (the local disk) are returned as they are.
func Unheard(tree Tree, gone <-chan struct{}) Tree {
	if u, ok := tree.(interface{ WithGone(<-chan struct{}) Tree }); ok && gone != nil {
		return u.WithGone(gone)
	}
	return tree
}

// PrefetchRead calls tree's PrefetchRead if it has one.
func PrefetchRead(tree Tree, name string) {
	if p, ok := tree.(ReadPrefetcher); ok {
		p.PrefetchRead(name)
	}
}

// PrefetchStat calls tree's PrefetchStat if it has one.
func PrefetchStat(tree Tree, names ...string) {
	if p, ok := tree.(StatPrefetcher); ok {
		p.PrefetchStat(names...)
	}
}

// Space is what a Storage reports about the room an account has, as
// statvfs(2) does. Block counts are in units of BlockSize. A backend
// without a fixed capacity (an object store) reports large, constant
// numbers, and the SFTP layer shows the account's quota instead where it
// has one.
type Space struct {
	BlockSize   uint64
	Blocks      uint64 // total
	BlocksFree  uint64 // free
	BlocksAvail uint64 // free for unprivileged writers
	Files       uint64 // total inodes
	FilesFree   uint64 // free inodes
	NameMax     uint64 // longest file name
	ReadOnly    bool
}

// UploadTempPrefix starts the names of the hidden files in which the local
// disk keeps uploads in progress (and of anything a backend hides the same
// way). Clients can neither see nor name such entries: the SFTP layer
// refuses client paths with such a name, leaves them out of listings and
// out of the quota's count.
const UploadTempPrefix = ".skiff-upload-"

// IsUploadTemp reports whether a name (one path element) is that of an
// upload in progress.
func IsUploadTemp(name string) bool {
	return len(name) >= len(UploadTempPrefix) && name[:len(UploadTempPrefix)] == UploadTempPrefix
}
