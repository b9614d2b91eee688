//go:build darwin || freebsd

package bench

import "golang.org/x/sys/unix"

// fsType names the kind of file system holding path for the report; the
// BSDs' statfs carries the name itself.
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(st.Fstypename[:])
}
