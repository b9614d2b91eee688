//go:build darwin || freebsd

package vfs

import (
	"syscall"
	"time"
)

// accessTime is a file's last access time.
func accessTime(st *syscall.Stat_t) time.Time { return time.Unix(st.Atimespec.Unix()) }
