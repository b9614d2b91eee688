//go:build darwin || freebsd

package vfs

import (
	"os"
	"syscall"
	"time"
)

// startWriteback does nothing: macOS and FreeBSD have no call that starts
// writeback without waiting for it (Linux's sync_file_range). The fsync on
// close still makes every upload durable; it only has more to write then.
func startWriteback(*os.File) {}

// accessTime is a file's last access time.
func accessTime(st *syscall.Stat_t) time.Time { return time.Unix(st.Atimespec.Unix()) }
