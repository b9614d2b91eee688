package vfs

import (
	"errors"
	"io/fs"
	"syscall"
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

var (
	errNotFound        = status(fxNoSuchFile, "no such file or directory")
	errDenied          = status(fxPermissionDenied, "permission denied")
	errReadOnly        = status(fxPermissionDenied, "permission denied: this folder is read-only")
	errExists          = status(fxFailure, "file already exists")
	errIsDir           = status(fxFailure, "is a directory")
	errNotDir          = status(fxNoSuchFile, "not a directory") // ENOTDIR, as OpenSSH
	errNotRegular      = status(fxFailure, "not a regular file")
	errNotEmpty        = status(fxFailure, "directory not empty")
	errNoLinks         = status(fxOpUnsupported, "links are not supported")
	errUploadDiscarded = status(fxFailure, "upload incomplete: a write failed, the file was not saved")
	errInternal        = status(fxFailure, "operation failed")
	errUnavailable     = status(fxFailure, "temporarily unavailable, try again")
	errSessionEnded    = status(fxPermissionDenied, "permission denied: SFTP access has ended")
)

// newNameError turns a CheckNewName refusal into a status.
func newNameError(err error) error {
	return status(fxFailure, "invalid file name: "+err.Error())
}

// pathError turns a CleanPath refusal into a status.
func pathError(err error) error {
	return status(fxFailure, "invalid path: "+err.Error())
}

// escapeText is the message of os.Root's unexported error for a path (a
// planted symbolic link) that leads out of the root. Matching the text is the
// only way to tell it apart; if it ever changes the escape is still refused,
// only reported as "operation failed" and logged.
const escapeText = "path escapes from parent"

// fsError maps an error of an os.Root call to a status. Causes nobody can
// fix from the client are logged by the caller and reported as a plain
// failure.
func fsError(err error) (st error, expected bool) {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se, true
	case errors.Is(err, fs.ErrNotExist):
		return errNotFound, true
	case errors.Is(err, fs.ErrPermission):
		return errDenied, true
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist, which it also is
		return errNotEmpty, true
	case errors.Is(err, fs.ErrExist):
		return errExists, true
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
	case syscall.ENAMETOOLONG:
		return status(fxFailure, "file name too long"), true
	case syscall.ELOOP:
		return status(fxFailure, "too many levels of symbolic links"), true
	case syscall.EINVAL:
		return status(fxFailure, "invalid argument"), true
	case syscall.EROFS:
		return status(fxPermissionDenied, "read-only file system"), true
	}
	return errInternal, false
}
