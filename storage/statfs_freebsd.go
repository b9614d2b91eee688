package storage

import "golang.org/x/sys/unix"

// statfs reports the file system holding fd. FreeBSD's statfs counts
// blocks in f_bsize units, and its free-for-users counts are signed: they go
// negative when root has eaten into the reserve, which is no space at all
// for Skiff's writers.
func statfs(fd int) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return Space{}, err
	}
	return Space{
		BlockSize:   st.Bsize,
		Blocks:      st.Blocks,
		BlocksFree:  st.Bfree,
		BlocksAvail: uint64(max(st.Bavail, 0)),
		Files:       st.Files,
		FilesFree:   uint64(max(st.Ffree, 0)),
		NameMax:     uint64(st.Namemax),
		ReadOnly:    st.Flags&unix.MNT_RDONLY != 0,
	}, nil
}
