package storage

import (
	"errors"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames with renameatx_np(RENAME_EXCL), macOS's
// counterpart of Linux's RENAME_NOREPLACE: it refuses an existing dst
// atomically (the call exists since macOS 10.12, older than any macOS Go
// supports). Should a file system refuse the flag (ENOTSUP, EINVAL), the
// rename falls back to renameByLink.
func renameNoReplace(fromFD int, from string, toFD int, to string) error {
	err := unix.RenameatxNp(fromFD, from, toFD, to, unix.RENAME_EXCL)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return renameByLink(fromFD, from, toFD, to)
	}
	return err
}
