package vfs

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/pkg/sftp"
)

// statusError is what handlers return: pkg/sftp sends its message to the
// client and takes the SFTP status code from the wrapped sftp.ErrSSHFx*
// value. Messages never hold a host path or a cause.
type statusError struct {
	code error
	msg  string
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.code }

func status(code error, msg string) error { return &statusError{code: code, msg: msg} }

var (
	errNotFound        = status(sftp.ErrSSHFxNoSuchFile, "no such file or directory")
	errDenied          = status(sftp.ErrSSHFxPermissionDenied, "permission denied")
	errReadOnly        = status(sftp.ErrSSHFxPermissionDenied, "permission denied: this folder is read-only")
	errExists          = status(sftp.ErrSSHFxFailure, "file already exists")
	errIsDir           = status(sftp.ErrSSHFxFailure, "is a directory")
	errNotDir          = status(sftp.ErrSSHFxFailure, "not a directory")
	errNotRegular      = status(sftp.ErrSSHFxFailure, "not a regular file")
	errNotEmpty        = status(sftp.ErrSSHFxFailure, "directory not empty")
	errNoLinks         = status(sftp.ErrSSHFxOpUnsupported, "links are not supported")
	errUploadDiscarded = status(sftp.ErrSSHFxFailure, "upload incomplete: a write failed, the file was not saved")
	errInternal        = status(sftp.ErrSSHFxFailure, "operation failed")
	errUnavailable     = status(sftp.ErrSSHFxFailure, "temporarily unavailable, try again")
	errSessionEnded    = status(sftp.ErrSSHFxPermissionDenied, "permission denied: SFTP access has ended")
)

// pathError turns a CleanPath refusal into a status.
func pathError(err error) error {
	return status(sftp.ErrSSHFxFailure, "invalid path: "+err.Error())
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
	case syscall.ENOTEMPTY:
		return errNotEmpty, true
	case syscall.EISDIR:
		return errIsDir, true
	case syscall.ENOTDIR:
		return errNotDir, true
	case syscall.ENOSPC, syscall.EDQUOT:
		return status(sftp.ErrSSHFxFailure, "no space left"), true
	case syscall.ENAMETOOLONG:
		return status(sftp.ErrSSHFxFailure, "file name too long"), true
	case syscall.ELOOP:
		return status(sftp.ErrSSHFxFailure, "too many levels of symbolic links"), true
	case syscall.EINVAL:
		return status(sftp.ErrSSHFxFailure, "invalid argument"), true
	case syscall.EROFS:
		return status(sftp.ErrSSHFxPermissionDenied, "read-only file system"), true
	}
	return errInternal, false
}
