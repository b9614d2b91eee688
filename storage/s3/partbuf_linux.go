package s3

import "golang.org/x/sys/unix"

// allocPart maps size bytes of anonymous memory, outside the Go heap (see
// partBuffers), or allocates them on the heap when the system refuses; it
// reports which.
func allocPart(size int64) (*[]byte, bool) {
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		b = make([]byte, size)
		return &b, false
	}
	return &b, true
}

// releasePart returns the pages of a mapped buffer to the system; the
// buffer stays usable and reads as zeros until written.
func releasePart(b []byte) {
	_ = unix.Madvise(b, unix.MADV_DONTNEED)
}
