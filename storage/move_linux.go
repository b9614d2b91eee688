package storage

import (
	"errors"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames with renameat2(RENAME_NOREPLACE), which refuses an
// existing dst atomically. File systems that do not implement the flag (NFS,
// some FUSE) answer EINVAL, and kernels before 3.15 ENOSYS; those fall back
// to renameByLink.
func renameNoReplace(fromFD int, from string, toFD int, to string) error {
	err := unix.Renameat2(fromFD, from, toFD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return renameByLink(fromFD, from, toFD, to)
	}
	return err
}
