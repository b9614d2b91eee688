package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// fsType names the kind of file system holding path for the report.
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "?"
	}
	if st.Type == unix.TMPFS_MAGIC {
		return "tmpfs"
	}
	return fmt.Sprintf("a disk file system (0x%x)", st.Type)
}
