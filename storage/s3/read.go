package s3

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/skiffhq/skiff/storage"
)

// Read-ahead. A reader fetches the object in chunks of readChunk bytes,
// each with its own ranged GET, and keeps up to readAhead of them in flight
// ahead of the client while it reads sequentially, so that the store's
// latency and throughput per connection are not on the client's path (as
// rclone's multi-thread downloads). SFTP clients keep many reads in flight
// and they can arrive slightly out of order: any read within the chunks
// held is served from them. A read elsewhere (a seek) starts over there
// with one chunk, and more follow only as the client reads on, so random
// reads fetch little. Memory per open file: readChunk × (readAhead + 2),
// the chunks held and one buffer kept for the next chunk: a sequential
// read drops a chunk behind it and fetches one ahead, and the buffer goes
// from one to the other rather than back to the pool. Whole chunks live in
// the store's pool outside the Go heap, as upload parts do (partBuffers),
// so that downloads do not double the heap the collector allows; all of
// them hold memory of the node's budget (memBudget), and over it a reader
// fetches ahead nothing, and only the bytes each read asks for.
const (
	readChunk = 4 << 20
	readAhead = 4
)

// chunk is one ranged GET of a reader.
type chunk struct {
	off  int64
	n    int64 // its length: readChunk, less at the end (or the first bytes of PrefetchRead)
	data []byte
	err  error
	done chan struct{} // closed when data and err are set
	// grant is the memory the chunk holds of the node's budget (0: none,
	// the bytes of one read fetched over the budget), and buf its buffer
	// from the store's pool when it is a whole chunk (else its data is on
	// the heap). Both are given back once the reader has dropped the chunk
	// and its GET has ended, by whichever comes second (state).
	grant int64
	buf   *[]byte
	state atomic.Int32 // chunkDropped | chunkEnded
}

const (
	chunkDropped = 1 << iota
	chunkEnded
)

// reader is an object open for reading.
type reader struct {
	t    *Tree
	name string
	key  string
	fi   *fileInfo

	mu     sync.Mutex
	chunks []*chunk // consecutive chunks held, the first at the window's start
	// spare is the pooled buffer of a whole chunk dropped after its GET
	// ended, or nil; it holds readChunk of the node's budget.
	spare *[]byte
	next  int64 // offset of the chunk after the last one held
	// lastEnd is where the last read ended.
	lastEnd int64
	cancel  context.CancelFunc
	ctx     context.Context
	closed  bool
	// touched is what Stat reports once the time was set through the
	// handle (Chtimes); r.fi stays as opened.
	touched *fileInfo
}

var _ storage.File = (*reader)(nil)

func newReader(t *Tree, name string, fi *fileInfo) *reader {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reader{t: t, name: name, key: t.key(name), fi: fi, ctx: ctx, cancel: cancel}
	if v, ok, _ := t.memo.Look(firstKey(r.key)); ok {
		// The file keeps the first bytes for its first reads, with their
		// memory from the node's budget; over it, it keeps nothing (the
		// bytes go with the request) and its reads fetch as usual.
		f, isFirst := v.(firstChunk)
		n := int64(len(f.data))
		if isFirst && f.etag == fi.etag && fi.etag != "" && t.s.mem.tryTake(t.ref.Account, n) {
			done := make(chan struct{})
			close(done)
			c := &chunk{n: n, data: f.data, grant: n, done: done}
			c.state.Store(chunkEnded) // no GET: dropping it gives the memory back
			r.chunks = []*chunk{c}
			r.next = n
		}
	}
	return r
}

// firstChunk is what PrefetchRead keeps of an object's first bytes, for
// the reader that opens it next in the span: its first chunk, of the
// version etag.
type firstChunk struct {
	etag string
	data []byte
}

// firstKey is the memo's key for the first chunk of the object at key.
func firstKey(key string) string { return "first bytes of " + key }

// prefetchBytes is how much of a file PrefetchRead fetches: a small file
// whole, and no more of a large one than a client that reads elsewhere
// first (a resumed download; rclone's streams after the first, each
// opening the file to read its own part) fetches for nothing.
const prefetchBytes = 1 << 20

// PrefetchRead implements storage.ReadPrefetcher: one ranged GET of the
// object's first prefetchBytes, whose answer says what a HEAD would (size,
// ETag, time) and brings the bytes the first reads want. Where no object has
// the name (a folder, or nothing) it lists the name's folder, as a stat
// would. An empty object (a range of nothing is refused), or a store that
// did not answer, is left to the stat that follows. The bytes live as long
// as the request, like its reply; the file opened with them keeps them only
// with memory from the node's budget (newReader).
func (t *Tree) PrefetchRead(name string) {
	if !t.memo.Open() || name == "." || t.check("open", name) != nil {
		return
	}
	key := t.key(name)
	_, known, token := t.knownStat(key)
	if known {
		return
	}
	out, err := t.s.client.GetObject(ctxBG, &awss3.GetObjectInput{Bucket: t.s.bucket, Key: aws.String(key),
		Range: aws.String(fmt.Sprintf("bytes=0-%d", prefetchBytes-1))}, quietChecksums)
	if err != nil {
		if isNotFound(err) {
			fi, err := t.statDir(ctxBG, name)
			t.keepAnswer(token, key, fi, err)
		}
		return
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength) // the whole object, if the store sent it all
	if cr := aws.ToString(out.ContentRange); cr != "" {
		if _, total, ok := strings.Cut(cr, "/"); ok {
			if size, err = strconv.ParseInt(total, 10, 64); err != nil {
				return
			}
		}
	}
	data := make([]byte, min(size, prefetchBytes))
	if _, err := io.ReadFull(out.Body, data); err != nil {
		return
	}
	fi := &fileInfo{name: path.Base(name), size: size, mtime: aws.ToTime(out.LastModified), etag: aws.ToString(out.ETag)}
	t.keepAnswer(token, key, fi, nil)
	t.memo.Keep(token, firstKey(key), firstChunk{etag: fi.etag, data: data})
}

// ReadAt implements storage.File. Every GET asks for the version the file
// had when opened (If-Match on its ETag): should the object be replaced
// meanwhile, the read fails rather than mixing two versions.
func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("read", r.name, fs.ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, pathErr("read", r.name, fs.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil // as pread(2), at any offset
	}
	size := r.fi.size
	if off >= size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	n := 0
	for pos := off; pos < end; {
		c := r.chunkAt(pos, end-pos)
		<-c.done
		if c.err != nil {
			r.reset(pos) // drop the failed chunk; the next read tries again
			return n, c.err
		}
		k := copy(p[n:int(end-off)], c.data[pos-c.off:])
		n += k
		pos += int64(k)
	}
	r.lastEnd = off + int64(n)
	if off+int64(n) == size && n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// chunkAt returns the chunk holding pos, fetching it if need be (want: the
// bytes the read asks for from pos). When the client reads sequentially
// (pos near where its last read ended), it keeps readAhead chunks fetched
// from pos's on, and keeps one chunk behind for reads that arrive late; a
// read elsewhere fetches only its own chunk. Over the node's memory budget
// it fetches no chunk ahead, and only the bytes asked for.
func (r *reader) chunkAt(pos, want int64) *chunk {
	i := -1
	for j, c := range r.chunks {
		if pos >= c.off && pos < c.off+c.n {
			i = j
			break
		}
	}
	if i < 0 {
		r.reset(pos)
		if !r.fetch() {
			r.fetchOnly(pos, want)
		}
		i = 0
	}
	if i > 1 { // the client read on: drop what it left behind, but one
		r.drop(r.chunks[:i-1])
		r.chunks = r.chunks[i-1:]
		i = 1
	}
	if pos >= r.lastEnd-readChunk && pos <= r.lastEnd+readChunk {
		for len(r.chunks)-i < readAhead && r.next < r.fi.size {
			if !r.fetch() {
				break
			}
		}
	}
	return r.chunks[i]
}

// reset drops every chunk; the next one fetched starts at pos's chunk.
func (r *reader) reset(pos int64) {
	r.drop(r.chunks)
	r.chunks = nil
	r.next = pos - pos%readChunk
}

// drop keeps the buffer of one of chunks whose GET has ended as the spare,
// and lets go of the others. A chunk still being fetched keeps its buffer:
// its GET writes into it.
func (r *reader) drop(chunks []*chunk) {
	for _, c := range chunks {
		if r.spare == nil && c.buf != nil {
			select {
			case <-c.done:
				r.spare = c.buf
				continue
			default:
			}
		}
		if c.state.Or(chunkDropped)&chunkEnded != 0 {
			r.release(c)
		}
	}
}

// release gives c's memory back: its budget, and its buffer to the pool.
func (r *reader) release(c *chunk) {
	r.t.s.mem.give(r.t.ref.Account, c.grant)
	if c.buf != nil {
		r.t.s.chunks.put(c.buf, readChunk)
	}
}

// fetch starts the GET of the chunk at r.next, and reports whether it did:
// not over the node's memory budget. A whole chunk goes into a pooled
// buffer (the spare first), outside the Go heap (partBuffers); a short one
// (a small file, the end of one) onto the heap.
func (r *reader) fetch() bool {
	n := min(readChunk, r.fi.size-r.next)
	var buf *[]byte
	grant := n
	switch {
	case r.spare != nil:
		buf, grant, r.spare = r.spare, readChunk, nil
	case !r.t.s.mem.tryTake(r.t.ref.Account, n):
		return false
	case n == readChunk:
		buf = r.t.s.chunks.getAny() // the GET fills it whole, or the chunk fails
	}
	r.get(r.next, n, buf, grant)
	r.next += n
	return true
}

// fetchOnly fetches the want bytes at pos (a read over the memory budget):
// that read's memory, which the SFTP reply's budget bounds.
func (r *reader) fetchOnly(pos, want int64) {
	r.t.s.mem.narrow.Add(1)
	n := min(want, r.fi.size-pos)
	r.get(pos, n, nil, 0)
	r.next = pos + n
}

// get starts the ranged GET of the n bytes at off, into buf if given.
func (r *reader) get(off, n int64, buf *[]byte, grant int64) {
	c := &chunk{off: off, n: n, grant: grant, buf: buf, done: make(chan struct{})}
	r.chunks = append(r.chunks, c)
	go func() {
		defer func() {
			close(c.done)
			if c.state.Or(chunkEnded)&chunkDropped != 0 {
				r.release(c)
			}
		}()
		in := &awss3.GetObjectInput{Bucket: r.t.s.bucket, Key: aws.String(r.key),
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", c.off, c.off+n-1))}
		if r.fi.etag != "" {
			in.IfMatch = aws.String(r.fi.etag)
		}
		out, err := r.t.s.client.GetObject(r.ctx, in, quietChecksums)
		if err != nil {
			c.err = changedErr("read", r.name, err)
			return
		}
		defer out.Body.Close()
		if buf != nil {
			c.data = (*buf)[:n]
		} else {
			c.data = make([]byte, n)
		}
		if _, err := io.ReadFull(out.Body, c.data); err != nil {
			c.err = mapErr("read", r.name, fmt.Errorf("at %d of %d bytes: %w", c.off, r.fi.size, err))
		}
	}()
}

func (r *reader) Stat() (fs.FileInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.touched != nil {
		return r.touched, nil
	}
	return r.fi, nil
}

func (r *reader) Close() error {
	// GETs in flight end first: a ReadAt waiting for one holds the lock,
	// and a store that stalls would hold Close with it.
	r.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.drop(r.chunks)
	if r.spare != nil {
		r.release(&chunk{grant: readChunk, buf: r.spare})
	}
	r.chunks, r.spare = nil, nil
	r.closed = true
	return nil
}

func (r *reader) WriteAt(p []byte, off int64) (int, error) {
	return 0, pathErr("write", r.name, syscall.EBADF)
}
func (r *reader) Write(p []byte) (int, error) { return 0, pathErr("write", r.name, syscall.EBADF) }
func (r *reader) Truncate(size int64) error   { return pathErr("truncate", r.name, syscall.EBADF) }
func (r *reader) Chtimes(a, m time.Time) error {
	if r.t.s.times == nil {
		return nil
	}
	if err := r.t.setTime(ctxBG, "chtimes", r.name, r.fi, m); err != nil {
		return err
	}
	fi := *r.fi
	fi.mtime = m
	r.mu.Lock()
	r.touched = &fi
	r.mu.Unlock()
	return nil
}
func (r *reader) Sync() error { return nil }
func (r *reader) Readdir(int) ([]fs.FileInfo, error) {
	return nil, pathErr("readdir", r.name, syscall.ENOTDIR)
}

// dir is a folder open for listing: pages of up to 1,000 keys, one request
// each, fetched as Readdir asks for them.
type dir struct {
	t      *Tree
	name   string
	prefix string
	fi     *fileInfo

	mu      sync.Mutex
	token   *string
	ended   bool
	pending []fs.FileInfo
}

var _ storage.File = (*dir)(nil)

// listPage is how many keys a listing asks for per request (S3's most).
const listPage = 1000

func (d *dir) Readdir(n int) ([]fs.FileInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for (n <= 0 || len(d.pending) < n) && !d.ended {
		if err := d.next(); err != nil {
			return nil, err
		}
	}
	if len(d.pending) == 0 {
		if n <= 0 {
			return nil, nil
		}
		return nil, io.EOF
	}
	k := len(d.pending)
	if n > 0 {
		k = min(k, n)
	}
	out := d.pending[:k:k]
	d.pending = d.pending[k:]
	return out, nil
}

func (d *dir) next() error {
	out, err := d.t.s.client.ListObjectsV2(ctxBG, &awss3.ListObjectsV2Input{Bucket: d.t.s.bucket,
		Prefix: aws.String(d.prefix), Delimiter: aws.String("/"), ContinuationToken: d.token, MaxKeys: aws.Int32(listPage)})
	if err != nil {
		return mapErr("readdir", d.name, err)
	}
	var page []*fileInfo
	for _, o := range out.Contents {
		k := aws.ToString(o.Key)
		if k == d.prefix {
			continue // the folder's own marker
		}
		name := k[len(d.prefix):]
		if storage.IsUploadTemp(name) {
			continue
		}
		page = append(page, &fileInfo{name: name, size: aws.ToInt64(o.Size), mtime: aws.ToTime(o.LastModified), etag: aws.ToString(o.ETag)})
	}
	var dirs []*fileInfo
	for _, cp := range out.CommonPrefixes {
		name, _ := keyName(d.prefix, aws.ToString(cp.Prefix))
		if name == "" || storage.IsUploadTemp(name) {
			continue
		}
		fi := &fileInfo{name: path.Base(name), dir: true}
		dirs = append(dirs, fi)
		page = append(page, fi)
	}
	d.markerTimes(dirs)
	d.t.withTimes(ctxBG, d.name, page)
	for _, fi := range page {
		d.pending = append(d.pending, fi)
	}
	d.token = out.NextContinuationToken
	d.ended = !aws.ToBool(out.IsTruncated) || d.token == nil
	return nil
}

// markerTimes gives listed folders the time of their marker object, which
// a delimited listing does not tell (a HEAD each, 16 at a time).
func (d *dir) markerTimes(dirs []*fileInfo) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, fi := range dirs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			head, err := d.t.s.client.HeadObject(ctxBG, &awss3.HeadObjectInput{Bucket: d.t.s.bucket, Key: aws.String(d.prefix + fi.name + "/")})
			if err == nil {
				fi.mtime = aws.ToTime(head.LastModified)
			}
		}()
	}
	wg.Wait()
}

func (d *dir) Stat() (fs.FileInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fi, nil
}
func (d *dir) Close() error { return nil }
func (d *dir) ReadAt(p []byte, off int64) (int, error) {
	return 0, pathErr("read", d.name, errIsDir)
}
func (d *dir) WriteAt(p []byte, off int64) (int, error) {
	return 0, pathErr("write", d.name, errIsDir)
}
func (d *dir) Write(p []byte) (int, error) { return 0, pathErr("write", d.name, errIsDir) }
func (d *dir) Truncate(int64) error        { return pathErr("truncate", d.name, errIsDir) }
func (d *dir) Chtimes(a, m time.Time) error {
	if d.t.s.times == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.t.setTime(ctxBG, "chtimes", d.name, d.fi, m); err != nil {
		return err
	}
	if d.name != "." { // the top keeps no time (setTime)
		fi := *d.fi
		fi.mtime = m
		d.fi = &fi
	}
	return nil
}
func (d *dir) Sync() error { return nil }

// quietChecksums keeps the SDK from logging, on every GET of an object
// uploaded in parts, that it cannot check a composite checksum on the
// fly (it checks whole-object checksums; ranged reads have none).
func quietChecksums(o *awss3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }
