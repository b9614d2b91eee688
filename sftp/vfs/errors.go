package vfs

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/skiffhq/skiff/storage"
)

// statusError is what handlers return: the server sends its code and
// message to the client in an SSH_FXP_STATUS reply. Messages never hold a
// host path or a cause.
type statusError struct {
	code uint32
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func status(code uint32, msg string) error { return &statusError{code: code, msg: msg} }

// OpenSSH's sftp-server answers every status with a fixed text per code;
// Skiff says the same wherever OpenSSH would answer the same request with
// the same code, so that clients and scripts see the same words. Only the
// refusals that are Skiff's own (read-only virtual folders, rights, names
// it refuses, a session ended) explain themselves.
const (
	msgOK          = "Success"
	msgEOF         = "End of file"
	msgNoSuchFile  = "No such file"
	msgDenied      = "Permission denied"
	msgFailure     = "Failure"
	msgBadMessage  = "Bad message"
	msgUnsupported = "Operation unsupported"
)

var (
	errNotFound        = status(fxNoSuchFile, msgNoSuchFile)
	errDenied          = status(fxPermissionDenied, msgDenied)
	errReadOnly        = status(fxPermissionDenied, "permission denied: this folder is read-only")
	errExists          = status(fxFailure, msgFailure)       // EEXIST
	errIsDir           = status(fxFailure, msgFailure)       // EISDIR
	errNotDir          = status(fxNoSuchFile, msgNoSuchFile) // ENOTDIR, as OpenSSH
	errNotRegular      = status(fxFailure, msgFailure)
	errBadFD           = status(fxNoSuchFile, msgNoSuchFile) // EBADF: reading a handle not open for it, as OpenSSH
	errNotEmpty        = status(fxFailure, msgFailure)       // ENOTEMPTY
	errBusy            = status(fxFailure, msgFailure)       // EBUSY
	errUploadElsewhere = status(fxFailure, "an upload in progress can be renamed within its folder tree only: close it first")
	errInvalid         = status(fxBadMessage, msgBadMessage) // EINVAL, as OpenSSH
	errNoLinks         = status(fxOpUnsupported, "links are not supported")
	errUploadDiscarded = status(fxFailure, "upload incomplete: a write failed, the file was not saved")
	errInternal        = status(fxFailure, msgFailure)
	errUnavailable     = status(fxFailure, "temporarily unavailable, try again")
	errSessionEnded    = status(fxPermissionDenied, "permission denied: SFTP access has ended")
)

// newNameError turns a CheckNewName refusal into a status.
func newNameError(err error) error {
	return status(fxFailure, "invalid file name: "+err.Error())
}

// pathError turns a CleanPath refusal into a status. A name or path too
// long is "bad message", as OpenSSH maps ENAMETOOLONG.
func pathError(err error) error {
	if errors.Is(err, ErrNameTooLong) || errors.Is(err, ErrPathTooLong) {
		return errInvalid
	}
	return status(fxFailure, "invalid path: "+err.Error())
}

// escapeText is the message of os.Root's unexported error for a path (a
// planted symbolic link) that leads out of the root. Matching the text is the
// only way to tell it apart; if it ever changes the escape is still refused,
// only reported as "operation failed" and logged.
const escapeText = "path escapes from parent"

// fsError maps an error of a storage.Tree or storage.File call to a status.
// Causes nobody can fix from the client are logged by the caller and
// reported as a plain failure.
func fsError(err error) (st error, expected bool) {
	var se *statusError
	var ue *storage.UnsupportedError
	switch {
	case errors.As(err, &se):
		return se, true
	case errors.As(err, &ue):
		// What the storage backend cannot do, in its words.
		return status(fxOpUnsupported, ue.Reason), true
	case errors.Is(err, storage.ErrUnsupported):
		return errUnsupported, true
	case errors.Is(err, storage.ErrChanged):
		return status(fxFailure, storage.ErrChanged.Error()+": open it again"), true
	case errors.Is(err, storage.ErrBusy):
		return status(fxFailure, storage.ErrBusy.Error()), true
	case errors.Is(err, storage.ErrUnavailable): // logged: the store is down
		return status(fxFailure, storage.ErrUnavailable.Error()), false
	case errors.Is(err, fs.ErrNotExist):
		return errNotFound, true
	case errors.Is(err, fs.ErrPermission):
		return errDenied, true
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist, which it also is
		return errNotEmpty, true
	case errors.Is(err, fs.ErrExist):
		return errExists, true
	case errors.Is(err, fs.ErrInvalid): // EINVAL from a disk, or a storage's own
		return errInvalid, true // as OpenSSH maps it
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err.Error() == escapeText {
		return errDenied, true
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return errInternal, false
	}
	switch errno {
	case syscall.EISDIR:
		return errIsDir, true
	case syscall.ENOTDIR:
		return errNotDir, true
	case syscall.ENOSPC, syscall.EDQUOT:
		return status(fxFailure, "no space left"), true
	case syscall.EFBIG: // a write or truncation past the largest file the file system allows
		return status(fxFailure, "file too large"), true
	case syscall.ENAMETOOLONG, syscall.EINVAL:
		return errInvalid, true // as OpenSSH maps them
	case syscall.ELOOP:
		return errNotFound, true // as OpenSSH maps it
	case syscall.EROFS:
		return status(fxPermissionDenied, "read-only file system"), true
	}
	return errInternal, false
}
