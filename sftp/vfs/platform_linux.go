package vfs

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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

// accessTime is a file's last access time.
func accessTime(st *syscall.Stat_t) time.Time { return time.Unix(st.Atim.Unix()) }
