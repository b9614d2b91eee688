package s3

import (
	"sync"
	"time"
)

// partBuffers hands out the buffers that hold an upload's parts, and (a
// pool of their own, of their size) downloads' whole chunks (read.go).
//
// On Linux they live outside the Go heap (partbuf_linux.go). A part on the
// heap is live memory, and the garbage collector lets the heap grow to
// twice what is live before it collects (GOGC=100): the four 8 MiB parts of
// one upload let the garbage of everything else (SFTP requests, HTTP
// buffers) grow by as much again, and the process by about twice the parts
// it held. Outside the heap a part costs its own size and no more. The
// price is collector CPU: with a smaller heap the collector runs more often
// on the same garbage (x/crypto allocates every SSH packet it receives).
//
// A buffer given back stays in the pool: up to keep of them resident for
// the next part, the rest with their pages returned to the system at once,
// and all of them once no part has been taken for partIdle. Whoever gives
// one back says how much of it may hold data (put's dirty), and get clears
// only that: a small file's part is cleared, and faulted in, over the
// bytes it held rather than over all its 8 MiB. On Linux the
// mapping itself is never removed, so a late reader of a part already sent
// (an HTTP request body the transport reads after the call returned) reads
// zeros, never unmapped memory; the pool's address space is the most parts
// ever held at once, its memory the parts in use.
type partBuffers struct {
	size int64
	keep int
	idle time.Duration // partIdle when the pool was made

	mu       sync.Mutex
	resident []kept           // given back, pages in place: reused first
	released []*[]byte        // given back, pages returned (Linux only)
	onHeap   map[*[]byte]bool // buffers allocated on the heap: dropped, never released
	lastTake time.Time
	trimming bool // a trim is scheduled
}

// kept is a resident buffer: bytes past dirty are zeros.
type kept struct {
	b     *[]byte
	dirty int64
}

// partIdle is how long a pool keeps idle buffers resident (read when the
// pool is made, so that a test may change it for the pools it makes).
var partIdle = 2 * time.Second

func newPartBuffers(size int64, keep int) *partBuffers {
	return &partBuffers{size: size, keep: keep, idle: partIdle}
}

// get returns a buffer of the pool's size, all zeros.
func (p *partBuffers) get() *[]byte {
	b, dirty := p.take()
	clear((*b)[:dirty])
	return b
}

// getAny returns a buffer of the pool's size holding anything, for a
// caller that writes all of it before reading any (a download's chunk).
func (p *partBuffers) getAny() *[]byte {
	b, _ := p.take()
	return b
}

// take returns a buffer and how much of it may hold data.
func (p *partBuffers) take() (*[]byte, int64) {
	p.mu.Lock()
	p.lastTake = time.Now()
	if n := len(p.resident); n > 0 {
		k := p.resident[n-1]
		p.resident = p.resident[:n-1]
		p.mu.Unlock()
		return k.b, k.dirty
	}
	if n := len(p.released); n > 0 {
		b := p.released[n-1] // its pages read as zeros
		p.released = p.released[:n-1]
		p.mu.Unlock()
		return b, 0
	}
	p.mu.Unlock()
	b, mapped := allocPart(p.size)
	if !mapped {
		p.mu.Lock()
		if p.onHeap == nil {
			p.onHeap = map[*[]byte]bool{}
		}
		p.onHeap[b] = true
		p.mu.Unlock()
	}
	return b, 0
}

// release returns b's pages to the system and reports whether b stays in
// the pool. Called with p.mu held.
func (p *partBuffers) release(b *[]byte) bool {
	if p.onHeap[b] {
		delete(p.onHeap, b) // for the collector
		return false
	}
	releasePart(*b)
	return true
}

// put gives a buffer back, of which only the first dirty bytes may be
// other than zeros (a buffer from getAny: all of it).
func (p *partBuffers) put(b *[]byte, dirty int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.resident) < p.keep {
		p.resident = append(p.resident, kept{b, min(dirty, int64(len(*b)))})
		if !p.trimming {
			p.trimming = true
			time.AfterFunc(p.idle, p.trim)
		}
		return
	}
	if p.release(b) {
		p.released = append(p.released, b)
	}
}

// trim returns the pages of the resident buffers once no part has been
// taken for partIdle.
func (p *partBuffers) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if idle := time.Since(p.lastTake); idle < p.idle {
		time.AfterFunc(p.idle-idle, p.trim)
		return
	}
	for _, k := range p.resident {
		if p.release(k.b) {
			p.released = append(p.released, k.b)
		}
	}
	p.resident = p.resident[:0]
	p.trimming = false
}

// counts reports the pool's resident and released buffers (tests).
func (p *partBuffers) counts() (resident, released int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.resident), len(p.released)
}
