package storage

import (
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// Move renames src inside srcRoot to dst inside dstRoot; the two roots may be
// different trees (a user's home and a project folder) on one file system.
//
// os.Root has no rename between roots, so Move opens each parent directory
// through its root (which keeps the lookup inside it) and renames between
// those descriptors with renameat(2) and its relatives. The last elements are
// single names and none of those calls follows them, so nothing outside
// either root is reached.
//
// With replace false the rename fails with an error wrapping os.ErrExist if
// dst exists, and it never replaces an existing file: see renameNoReplace
// (per operating system) and renameByLink for how each platform refuses.
// src and dst must be clean relative paths naming an entry, not the root.
func Move(srcRoot *os.Root, src string, dstRoot *os.Root, dst string, replace bool) error {
	if replace {
		return move(srcRoot, src, dstRoot, dst, unix.Renameat)
	}
	return move(srcRoot, src, dstRoot, dst, renameNoReplace)
}

// move resolves both parents through their roots and calls rename with
// their descriptors and the two last names.
func move(srcRoot *os.Root, src string, dstRoot *os.Root, dst string, rename func(fromFD int, from string, toFD int, to string) error) error {
	srcDir, srcName, err := splitEntry(src)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	dstDir, dstName, err := splitEntry(dst)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	from, err := srcRoot.Open(srcDir)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := dstRoot.Open(dstDir)
	if err != nil {
		return err
	}
	defer to.Close()

	err = withFD(from, func(fromFD int) error {
		return withFD(to, func(toFD int) error {
			return rename(fromFD, srcName, toFD, dstName)
		})
	})
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

// renameByLink renames without replacing an existing entry, using only
// calls every Unix has. It is what renameNoReplace falls back to where the
// kernel or the file system has no atomic no-replace rename (FreeBSD; NFS
// and some FUSE file systems on Linux and macOS).
//
// A file, symbolic link or other non-directory is moved as link(2) then
// unlink(2) of the old name, as OpenSSH's sftp-server does: link fails with
// EEXIST atomically when dst exists, and the file is complete under either
// name at every moment, so no partial file is ever visible and nothing is
// replaced.
//
// A directory cannot be hard-linked, so it is checked for, then renamed.
// The window between the two cannot cost data: rename(2) of a directory
// onto a file fails (ENOTDIR) and onto a non-empty directory fails
// (ENOTEMPTY), so the most a concurrent client can lose is an empty
// directory it created in that instant. The same check-then-rename is the
// last resort for a non-directory on a file system without hard links
// (EPERM, ENOTSUP, EMLINK), as in sftp-server.
func renameByLink(fromFD int, from string, toFD int, to string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(fromFD, from, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// Flags 0: a symbolic link is linked itself, not its target.
		err := unix.Linkat(fromFD, from, toFD, to, 0)
		if err == nil {
			if err := unix.Unlinkat(fromFD, from, 0); err != nil {
				// Undo, so a failed rename leaves one name as before.
				_ = unix.Unlinkat(toFD, to, 0)
				return err
			}
			return nil
		}
		if !linkUnsupported(err) {
			return err
		}
	}
	return checkThenRename(fromFD, from, toFD, to)
}

// linkUnsupported reports whether link(2) failed because this file cannot
// have another name here (a file system without hard links, a Linux
// protected_hardlinks refusal, a file at its link limit) rather than because
// of the names themselves.
func linkUnsupported(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) ||
		errors.Is(err, unix.EMLINK)
}

// checkThenRename refuses when dst exists, then renames. The window between
// the two only lets a concurrent client of the same tree lose a race; see
// renameByLink for when it is used.
func checkThenRename(fromFD int, from string, toFD int, to string) error {
	var st unix.Stat_t
	switch err := unix.Fstatat(toFD, to, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil:
		return unix.EEXIST
	case !errors.Is(err, unix.ENOENT):
		return err
	}
	return unix.Renameat(fromFD, from, toFD, to)
}

// splitEntry splits a clean relative path into its parent and last name,
// refusing anything whose last element is not a plain name.
func splitEntry(p string) (dir, name string, err error) {
	dir, name = path.Split(p)
	if name == "" || name == "." || name == ".." || path.IsAbs(p) {
		return "", "", unix.EINVAL
	}
	if dir == "" {
		return ".", name, nil
	}
	return path.Clean(dir), name, nil
}
