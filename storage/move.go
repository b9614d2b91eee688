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
// those descriptors with renameat2. The last elements are single names and
// renameat2 never follows them, so nothing outside either root is reached.
//
// With replace false the rename fails with an error wrapping os.ErrExist if
// dst exists, atomically where the file system supports RENAME_NOREPLACE.
// src and dst must be clean relative paths naming an entry, not the root.
func Move(srcRoot *os.Root, src string, dstRoot *os.Root, dst string, replace bool) error {
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
			return renameAt(fromFD, srcName, toFD, dstName, replace)
		})
	})
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

func renameAt(fromFD int, from string, toFD int, to string, replace bool) error {
	if replace {
		return unix.Renameat(fromFD, from, toFD, to)
	}
	err := unix.Renameat2(fromFD, from, toFD, to, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	// The file system cannot refuse atomically: check, then rename. The
	// window only lets a concurrent client of the same tree lose a race.
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
