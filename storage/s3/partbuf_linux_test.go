package s3

import (
	"bytes"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/skiffhq/skiff/internal/testkit"
)

// residentPages counts the pages of b in memory.
func residentPages(t *testing.T, b []byte) int {
	t.Helper()
	pageSize := unix.Getpagesize()
	vec := make([]byte, (len(b)+pageSize-1)/pageSize)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// An upload's parts are not on the Go heap: the garbage collector, which
// lets the heap grow to twice what is live, would let the process grow by
// twice the parts an upload holds.
func TestPartBuffersAreNotOnTheHeap(t *testing.T) {
	s, err := New(nil, Config{Bucket: "b", PartSize: 8 << 20, PartsInFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	before := heapInUse()
	var held []*[]byte
	for range 4 {
		b := s.parts.get()
		for i := range *b {
			(*b)[i] = 1
		}
		held = append(held, b)
	}
	grew := int64(heapInUse()) - int64(before)
	t.Logf("four parts of 8 MiB grew the heap by %d bytes", grew)
	if grew > 1<<20 {
		t.Errorf("four parts of 8 MiB grew the heap by %d bytes; want them outside the heap", grew)
	}
	for _, b := range held {
		s.parts.put(b, int64(len(*b)))
	}
}

// Buffers given back beyond the parts in flight return their pages at once,
// and the rest once no part was taken for partIdle; a buffer whose pages
// were returned is handed out again reading as zeros.
func TestIdlePartBuffersReturnTheirPages(t *testing.T) {
	defer func(d time.Duration) { partIdle = d }(partIdle)
	partIdle = 50 * time.Millisecond
	const size = 1 << 20
	p := newPartBuffers(size, 2)
	var held []*[]byte
	for range 3 {
		b := p.get()
		if !bytes.Equal(*b, make([]byte, size)) {
			t.Fatal("a new part buffer is not all zeros")
		}
		copy(*b, bytes.Repeat([]byte("data"), size/4))
		held = append(held, b)
	}
	pages := residentPages(t, *held[0])
	if pages == 0 {
		t.Fatal("a written buffer has no page in memory")
	}
	for _, b := range held {
		p.put(b, size)
	}
	if resident, released := p.counts(); resident != 2 || released != 1 {
		t.Errorf("after three buffers came back to a pool keeping two: %d resident, %d released; want 2, 1", resident, released)
	}
	if n := residentPages(t, *held[2]); n != 0 {
		t.Errorf("the buffer past the two kept still has %d of %d pages in memory", n, pages)
	}
	testkit.Eventually(t, "the idle pool to release its resident buffers", func() bool {
		resident, _ := p.counts()
		return resident == 0
	})
	for i, b := range held {
		if n := residentPages(t, *b); n != 0 {
			t.Errorf("buffer %d still has %d pages in memory after the pool was idle", i, n)
		}
	}
	// What was sent and given back reads as zeros when handed out again
	// (a late reader of a sent part reads zeros too, never unmapped memory).
	for range 3 {
		if b := p.get(); !bytes.Equal(*b, make([]byte, size)) {
			t.Error("a reused part buffer is not all zeros")
		}
	}
}

// A buffer given back and taken again at once (its pages in place) is
// cleared: an upload's sparse writes leave zeros between them.
func TestReusedPartBufferIsCleared(t *testing.T) {
	p := newPartBuffers(1<<20, 2)
	b := p.get()
	const wrote = "what the last upload wrote"
	copy(*b, wrote)
	p.put(b, int64(len(wrote)))
	if again := p.get(); again != b || !bytes.Equal(*again, make([]byte, 1<<20)) {
		t.Errorf("the buffer taken again (same: %v) is not all zeros", again == b)
	}
}

// Reusing the buffer of a small file's part clears what the file wrote and
// no more: the rest of the buffer stays out of memory (and costs no time),
// where clearing all of it brought every page of it in, 8 MiB per upload
// by default.
func TestReusedPartBufferIsClearedOnlyWhereWritten(t *testing.T) {
	const size = 8 << 20
	p := newPartBuffers(size, 2)
	b := p.get()
	small := bytes.Repeat([]byte("small file "), 1000) // 11 kB: three pages
	copy(*b, small)
	written := residentPages(t, *b)
	p.put(b, int64(len(small)))
	again := p.get()
	if again != b {
		t.Fatal("the resident buffer was not reused")
	}
	if n := residentPages(t, *again); n > written {
		t.Errorf("the reused buffer has %d pages in memory; the file wrote %d", n, written)
	}
	if !bytes.Equal((*again)[:len(small)], make([]byte, len(small))) {
		t.Error("what the last upload wrote was not cleared")
	}
	// What was written anywhere in the buffer is cleared by the same rule:
	// the upload says how far it wrote.
	copy((*again)[size-len(small):], small)
	p.put(again, size)
	if b := p.get(); !bytes.Equal(*b, make([]byte, size)) {
		t.Error("a buffer written to its end is not all zeros when taken again")
	}
}
