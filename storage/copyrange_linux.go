package storage

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errNoCopyRange says the kernel cannot copy between these two files
// (another file system, an old kernel, a file system without support): the
// caller copies through a buffer.
var errNoCopyRange = Unsupported("copy", "the kernel cannot copy between these files")

// copyFileRange copies up to n bytes of src at roff to dst at woff in the
// kernel (copy_file_range(2)): no data passes through user space, and file
// systems that share blocks (XFS, Btrfs) make it a reflink. 0 at src's end.
func copyFileRange(src *os.File, roff int64, dst *os.File, woff int64, n int64) (int, error) {
	rs, err := src.SyscallConn()
	if err != nil {
		return 0, errNoCopyRange
	}
	rd, err := dst.SyscallConn()
	if err != nil {
		return 0, errNoCopyRange
	}
	var got int
	var cerr error
	err = rs.Control(func(sfd uintptr) {
		err := rd.Control(func(dfd uintptr) {
			got, cerr = unix.CopyFileRange(int(sfd), &roff, int(dfd), &woff, int(n), 0)
		})
		if cerr == nil {
			cerr = err
		}
	})
	if cerr == nil {
		cerr = err
	}
	switch {
	case errors.Is(cerr, unix.EXDEV), errors.Is(cerr, unix.ENOSYS), errors.Is(cerr, unix.EOPNOTSUPP),
		errors.Is(cerr, unix.EINVAL), errors.Is(cerr, unix.EBADF):
		return 0, errNoCopyRange
	case cerr != nil:
		return 0, cerr
	}
	return got, nil
}

// startWriteback asks the kernel to start writing f's dirty pages without
// waiting for them. It is only a hint: the fsync on close is what makes the
// upload durable, so a failure here is ignored.
func startWriteback(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	})
}
