package pgtest

import "syscall"

// ramDir is a RAM-backed folder for the test server, if Linux has a roomy
// one: initdb and cloning databases run several times faster there than on
// disk. Containers often give /dev/shm only 64 MB, too little.
func ramDir() string {
	const dir = "/dev/shm"
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Bavail*uint64(st.Bsize) < 1<<30 {
		return ""
	}
	return dir
}
