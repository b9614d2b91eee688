//go:build !linux

package s3

// allocPart allocates a part buffer on the heap: outside Linux, part
// buffers are not mapped (see partBuffers).
func allocPart(size int64) (*[]byte, bool) {
	b := make([]byte, size)
	return &b, false
}

// releasePart is never called outside Linux: every buffer is on the heap.
func releasePart([]byte) {}
