//go:build !linux

package storage

import "os"

// errNoCopyRange says the kernel cannot copy between these two files: the
// caller copies through a buffer.
var errNoCopyRange = Unsupported("copy", "the kernel cannot copy between these files")

// copyFileRange is Linux's; elsewhere copy-data goes through a buffer.
func copyFileRange(*os.File, int64, *os.File, int64, int64) (int, error) {
	return 0, errNoCopyRange
}

// startWriteback does nothing: macOS and FreeBSD have no call that starts
// writeback without waiting for it (Linux's sync_file_range). The fsync on
// close still makes every upload durable; it only has more to write then.
func startWriteback(*os.File) {}
