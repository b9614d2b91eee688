package vfs

import (
	"errors"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/skiffhq/skiff/storage"
)

// Names of the two top-level folders. Clients see them; keep them stable.
const (
	MyFiles     = "My Files"
	SharedMount = "Projects Shared With Me"

	MyFilesPath     = "/" + MyFiles
	SharedMountPath = "/" + SharedMount
)

// Limits on client paths, as in Linux (NAME_MAX, PATH_MAX).
const (
	MaxNameLen = 255
	MaxPathLen = 4096
)

// tempPrefix starts the names of the hidden files that atomic uploads write
// before renaming them into place. Clients can neither see nor name them.
const tempPrefix = storage.UploadTempPrefix

// Errors of CleanPath. They all mean the client sent a path that names
// nothing a user could have created.
var (
	ErrInvalidChar = errors.New("invalid character in path")
	ErrNameTooLong = errors.New("file name too long")
	ErrPathTooLong = errors.New("path too long")
	ErrReserved    = errors.New("reserved file name")
)

// CleanPath turns a client path into a clean absolute virtual path, or
// refuses it. It is applied once, at the edge, to every path a client sends.
//
//   - Relative paths are taken from "/" (the server has already joined them
//     with the session's start directory).
//   - ".", "..", repeated and trailing slashes are resolved lexically; ".."
//     stops at "/", as in POSIX, and the tree below then confines the result.
//   - A backslash is an ordinary character of a name, as on any POSIX
//     system and in OpenSSH's sftp-server (SFTP paths are POSIX; Windows
//     clients convert their separators themselves).
//   - NUL is refused, as is any element longer than MaxNameLen bytes or a
//     path longer than MaxPathLen bytes.
//   - Names that start like the hidden upload files are refused.
func CleanPath(p string) (string, error) {
	if len(p) > MaxPathLen {
		return "", ErrPathTooLong
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", ErrInvalidChar
	}
	clean := path.Clean("/" + p)
	for rest := clean[1:]; rest != ""; {
		name, tail, _ := strings.Cut(rest, "/")
		if len(name) > MaxNameLen {
			return "", ErrNameTooLong
		}
		if strings.HasPrefix(name, tempPrefix) {
			return "", ErrReserved
		}
		rest = tail
	}
	return clean, nil
}

// ErrBadNewName is why a name cannot be created: it must be valid UTF-8 with
// no control characters. Such a name breaks other users' clients (paramiko's
// listdir raises on invalid UTF-8 for everyone listing the folder; a newline
// splits a line of "ls" output or a script's loop), so it is refused when an
// upload, mkdir or rename would create it. Existing entries with such names,
// put there by other means, stay readable, renamable and deletable.
var ErrBadNewName = errors.New("file names must be valid UTF-8 text without control characters (such as a newline or tab)")

// CheckNewName checks the last element of a clean path (from CleanPath) as
// the name of a new entry; nil when it may be created.
func CheckNewName(vpath string) error {
	name := path.Base(vpath)
	if !utf8.ValidString(name) {
		return ErrBadNewName
	}
	for _, r := range name {
		if unicode.IsControl(r) { // C0, DEL and C1
			return ErrBadNewName
		}
	}
	return nil
}
