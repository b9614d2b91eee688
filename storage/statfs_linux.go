package storage

import "golang.org/x/sys/unix"

// statfs reports the file system holding fd. Linux's statfs counts blocks
// in fragment-size units (f_frsize), as statvfs does.
func statfs(fd int) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return Space{}, err
	}
	return Space{
		BlockSize:   uint64(st.Frsize),
		Blocks:      st.Blocks,
		BlocksFree:  st.Bfree,
		BlocksAvail: st.Bavail,
		Files:       st.Files,
		FilesFree:   st.Ffree,
		NameMax:     uint64(st.Namelen),
		ReadOnly:    st.Flags&unix.ST_RDONLY != 0,
	}, nil
}
