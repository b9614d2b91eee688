package storage

import "golang.org/x/sys/unix"

// pcNameMax is _PC_NAME_MAX from macOS's <unistd.h>, which
// golang.org/x/sys/unix does not define for darwin.
const pcNameMax = 4

// statfs reports the file system holding fd. macOS's statfs counts blocks
// in f_bsize units and has no name length, which fpathconf gives per file
// system (255 if it cannot tell, macOS's NAME_MAX).
func statfs(fd int) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return Space{}, err
	}
	nameMax, err := unix.Fpathconf(fd, pcNameMax)
	if err != nil || nameMax <= 0 {
		nameMax = 255
	}
	return Space{
		BlockSize:   uint64(st.Bsize),
		Blocks:      st.Blocks,
		BlocksFree:  st.Bfree,
		BlocksAvail: st.Bavail,
		Files:       st.Files,
		FilesFree:   st.Ffree,
		NameMax:     uint64(nameMax),
		ReadOnly:    st.Flags&unix.MNT_RDONLY != 0,
	}, nil
}
