//go:build !linux

package vfs

import (
	"errors"
	"os"
)

// errNoCopyRange says the kernel cannot copy between these two files: the
// caller copies through a buffer.
var errNoCopyRange = errors.New("vfs: copy_file_range not available")

// copyFileRange is Linux's; elsewhere copy-data goes through a buffer.
func copyFileRange(*os.File, int64, *os.File, int64, int64) (int, error) {
	return 0, errNoCopyRange
}
