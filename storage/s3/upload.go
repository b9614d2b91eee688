package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/skiffhq/skiff/storage"
)

// Uploads. What a client writes is cut into parts of Config.PartSize and
// sent as a multipart upload, so memory stays bounded whatever the size;
// the object appears only when the upload completes (Commit), and an upload
// that is closed without Commit is aborted, leaving nothing behind. A file
// no larger than one part is sent with one PutObject at Commit instead.
//
// SFTP clients keep several writes in flight, which can arrive out of
// order: writes are accepted anywhere in the Config.PartsInFlight parts
// held in memory past what has been sent. A part is sent when it is fully
// written, or, to make room, with whatever holes it has (which then read as
// zeros). A write to a part already sent, or beyond the parts in memory,
// is refused with an *storage.UnsupportedError.

// errRandomWrite is the reason given for a write the upload cannot take.
const errRandomWrite = "random writes are not supported on this storage: write the file from start to end"

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// multipart is a multipart upload in progress.
type multipart struct {
	s   *Store
	key string
	id  *string

	mu        sync.Mutex
	parts     []types.CompletedPart
	next      int32 // number of the next part
	checksums bool
}

// startMultipart starts a multipart upload to key. With checksums, every
// part is sent with its CRC32C, which the store checks and keeps (the
// object's stored checksum). Uploads with server-side copied parts go
// without: stores disagree on which checksum a copied part reports.
func (s *Store) startMultipart(ctx context.Context, key string, checksums bool) (*multipart, error) {
	in := &awss3.CreateMultipartUploadInput{Bucket: s.bucket, Key: aws.String(key)}
	if checksums {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	}
	out, err := s.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return nil, err
	}
	return &multipart{s: s, key: key, id: out.UploadId, next: 1, checksums: checksums}, nil
}

// noChecksum keeps the SDK from adding a checksum to a request on its own.
func noChecksum(o *awss3.Options) {
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
}

// number reserves the next part number.
func (m *multipart) number() (int32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.next > maxParts {
		return 0, pathErr("write", m.key, syscall.EFBIG)
	}
	n := m.next
	m.next++
	return n, nil
}

func (m *multipart) done(p types.CompletedPart) {
	m.mu.Lock()
	m.parts = append(m.parts, p)
	m.mu.Unlock()
}

func (m *multipart) uploadPart(ctx context.Context, n int32, data []byte) error {
	in := &awss3.UploadPartInput{Bucket: m.s.bucket, Key: aws.String(m.key), UploadId: m.id,
		PartNumber: aws.Int32(n), Body: bytesReader(data), ContentLength: aws.Int64(int64(len(data)))}
	var opts []func(*awss3.Options)
	if m.checksums {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	} else {
		opts = append(opts, noChecksum)
	}
	out, err := m.s.client.UploadPart(ctx, in, opts...)
	if err != nil {
		return err
	}
	m.done(types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag, ChecksumCRC32C: out.ChecksumCRC32C})
	return nil
}

// copyPart adds n bytes of the object src at off as the next part,
// copied by the server.
// With etag, only from that version of src.
func (m *multipart) copyPart(ctx context.Context, src, etag string, off, n int64) error {
	num, err := m.number()
	if err != nil {
		return err
	}
	in := &awss3.UploadPartCopyInput{Bucket: m.s.bucket, Key: aws.String(m.key), UploadId: m.id,
		PartNumber: aws.Int32(num), CopySource: aws.String(m.s.cfg.Bucket + "/" + urlPathEscape(src)),
		CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))}
	if etag != "" {
		in.CopySourceIfMatch = aws.String(etag)
	}
	out, err := m.s.client.UploadPartCopy(ctx, in)
	if err != nil {
		return err
	}
	p := types.CompletedPart{PartNumber: aws.Int32(num)}
	if r := out.CopyPartResult; r != nil {
		p.ETag = r.ETag
	}
	m.done(p)
	return nil
}

// complete puts the object in place; with exclusive, only if the key is
// free (If-None-Match); with ifMatch, only if the object is still that
// version (If-Match).
func (m *multipart) complete(ctx context.Context, exclusive bool, ifMatch string) (string, error) {
	m.mu.Lock()
	parts := slices.Clone(m.parts)
	m.mu.Unlock()
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	in := &awss3.CompleteMultipartUploadInput{Bucket: m.s.bucket, Key: aws.String(m.key), UploadId: m.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	if exclusive {
		in.IfNoneMatch = aws.String("*")
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := m.s.client.CompleteMultipartUpload(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func (m *multipart) abort() error {
	_, err := m.s.client.AbortMultipartUpload(context.Background(), &awss3.AbortMultipartUploadInput{Bucket: m.s.bucket, Key: aws.String(m.key), UploadId: m.id})
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// partBuf is a part being filled, and which of its bytes were written.
type partBuf struct {
	b       *[]byte
	written []span // sorted, disjoint
}

type span struct{ from, to int64 }

func (p *partBuf) mark(from, to int64) {
	p.written = append(p.written, span{from, to})
	slices.SortFunc(p.written, func(a, b span) int { return int(a.from - b.from) })
	merged := p.written[:1]
	for _, s := range p.written[1:] {
		last := &merged[len(merged)-1]
		if s.from <= last.to {
			last.to = max(last.to, s.to)
		} else {
			merged = append(merged, s)
		}
	}
	p.written = merged
}

// dirty is how far into the buffer bytes were written: past it, zeros.
func (p *partBuf) dirty() int64 {
	if len(p.written) == 0 {
		return 0
	}
	return p.written[len(p.written)-1].to
}

func (p *partBuf) full(size int64) bool {
	return len(p.written) == 1 && p.written[0].from == 0 && p.written[0].to >= size
}

// writer is the state shared by an Upload (a new object) and a file opened
// for writing in place (modify.go): the parts in memory and the multipart
// upload they go to.
type writer struct {
	t        *Tree
	name     string
	partSize int64
	slots    int // Config.PartsInFlight

	mu       sync.Mutex
	cond     sync.Cond
	size     int64      // the file's size so far
	flushed  int64      // bytes [0, flushed) are sent (or copied) as parts
	bufs     []*partBuf // bufs[i] holds [flushed+i*partSize, flushed+(i+1)*partSize)
	inflight int        // parts being sent
	mp       *multipart // nil until the first part is sent
	err      error      // the first failure of a part sent in the background
	done     bool       // committed or closed
	peak     int        // the most parts in memory at once (tests)
	noSums   bool       // parts may be copied: no checksums (startMultipart)
	// mtime is a time set through the handle, kept once the file is in
	// place (nil: none, or written to since).
	mtime *time.Time
	// fresh: the name held nothing when the upload began, so no time kept
	// for it needs forgetting at the commit (Remove forgot the last one).
	fresh bool
	// etag is the ETag of the object the upload became, as the store
	// answered the request that wrote it ("" before, or if it did not say).
	etag string
}

func (w *writer) init(t *Tree, name string) {
	w.t, w.name = t, name
	w.partSize = t.s.cfg.PartSize
	w.slots = t.s.cfg.PartsInFlight
	w.cond.L = &w.mu
}

// writeLocked writes p at off.
func (w *writer) writeLocked(p []byte, off int64) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil // writes nothing and changes nothing, as pwrite(2)
	}
	w.mtime = nil // a write after a time set makes it now, as on a disk
	if off < w.flushed || off > w.flushed+int64(w.slots)*w.partSize {
		return 0, unsupported("write", errRandomWrite)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		i := int((pos - w.flushed) / w.partSize)
		if pos < w.flushed {
			return n, unsupported("write", errRandomWrite)
		}
		for i >= len(w.bufs) {
			if len(w.bufs)+w.inflight < w.slots {
				if w.inflight > 0 && !w.t.s.mem.tryTake(w.t.ref.Account, w.partSize) {
					// Over the node's memory for transfers: wait for
					// a part of this upload to be sent (memBudget).
					w.cond.Wait()
					if w.err != nil {
						return n, w.err
					}
					i = int((pos - w.flushed) / w.partSize)
					continue
				}
				b, err := w.newBuf(w.inflight > 0)
				if err != nil {
					return n, err
				}
				w.bufs = append(w.bufs, b)
				w.peak = max(w.peak, len(w.bufs)+w.inflight)
				continue
			}
			if w.inflight > 0 {
				w.cond.Wait()
			} else if err := w.sendFront(w.partSize); err != nil {
				return n, err
			}
			if w.err != nil {
				return n, w.err
			}
			i = int((pos - w.flushed) / w.partSize)
		}
		b := w.bufs[i]
		in := pos - w.flushed - int64(i)*w.partSize
		c := copy((*b.b)[in:w.partSize], p[n:])
		b.mark(in, in+int64(c))
		n += c
		w.size = max(w.size, pos+int64(c))
		for len(w.bufs) > 0 && w.bufs[0].full(w.partSize) {
			if err := w.sendFront(w.partSize); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// newBuf takes a part buffer, and its memory from the node's budget unless
// taken already; it waits up to Config.MemoryWait for that memory, then fails with
// storage.ErrBusy (or at once when nobody is left to hear: WithGone).
func (w *writer) newBuf(taken bool) (*partBuf, error) {
	if !taken {
		if err := w.t.s.mem.take(w.t.ref.Account, w.partSize, w.t.gone); err != nil {
			return nil, mapErr("write", w.name, err)
		}
	}
	return &partBuf{b: w.t.s.parts.get()}, nil
}

// putBuf gives a part buffer back, and its memory to the budget.
func (w *writer) putBuf(b *partBuf) {
	w.t.s.parts.put(b.b, b.dirty())
	w.t.s.mem.give(w.t.ref.Account, w.partSize)
}

// sendFront sends the first n bytes of the first part in memory as the
// next part, in the background.
func (w *writer) sendFront(n int64) error {
	if w.mp == nil {
		mp, err := w.t.s.startMultipart(ctxBG, w.t.key(w.name), !w.noSums)
		if err != nil {
			return mapErr("write", w.name, err)
		}
		w.mp = mp
	}
	num, err := w.mp.number()
	if err != nil {
		return err
	}
	b := w.bufs[0]
	w.bufs = w.bufs[1:]
	w.flushed += w.partSize
	w.inflight++
	go func() {
		err := w.mp.uploadPart(ctxBG, num, (*b.b)[:n])
		w.putBuf(b)
		w.mu.Lock()
		w.inflight--
		if err != nil && w.err == nil {
			w.err = mapErr("write", w.name, err)
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	return nil
}

// wait waits for the parts in flight.
func (w *writer) wait() {
	for w.inflight > 0 {
		w.cond.Wait()
	}
}

// readLocked serves a read from the parts in memory.
func (w *writer) readLocked(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil // as pread(2), at any offset
	}
	if off >= w.size {
		return 0, io.EOF
	}
	if off < w.flushed {
		return 0, unsupported("read", errReadSent)
	}
	end := min(off+int64(len(p)), w.size)
	n := 0
	for pos := off; pos < end; {
		i := int((pos - w.flushed) / w.partSize)
		in := pos - w.flushed - int64(i)*w.partSize
		c := int(min(end-pos, w.partSize-in))
		if i < len(w.bufs) {
			copy(p[n:n+c], (*w.bufs[i].b)[in:])
		} else {
			clear(p[n : n+c])
		}
		n += c
		pos += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// truncateLocked sets the size, if it is not below what was sent.
func (w *writer) truncateLocked(size int64) error {
	if size < 0 {
		return pathErr("truncate", w.name, fs.ErrInvalid)
	}
	w.mtime = nil
	if size < w.flushed {
		return unsupported("truncate", "this file can only be truncated to its full size or to zero on this storage")
	}
	for i, b := range w.bufs {
		start := w.flushed + int64(i)*w.partSize
		if size < start+w.partSize {
			clear((*b.b)[max(0, size-start):])
		}
	}
	w.size = size
	return nil
}

// restart drops everything written (truncation to zero).
func (w *writer) restart() error {
	w.wait()
	w.releaseBufs()
	if w.mp != nil {
		if err := w.mp.abort(); err != nil {
			return mapErr("truncate", w.name, err)
		}
		w.mp = nil
	}
	w.size, w.flushed, w.err = 0, 0, nil
	return nil
}

func (w *writer) releaseBufs() {
	for _, b := range w.bufs {
		w.putBuf(b)
	}
	w.bufs = nil
}

// finish sends what is left and puts the object at key in place.
// With exclusive, only if the key is free; with ifMatch, only if the object
// at key is still that version (the one a file opened for writing in place
// started from): otherwise storage.ErrChanged, and nothing is replaced.
func (w *writer) finish(key string, exclusive bool, ifMatch string) error {
	defer w.t.changed()
	var ifNoneMatch, ifMatchV *string
	if exclusive {
		ifNoneMatch = aws.String("*")
	}
	mapped := mapErr
	if ifMatch != "" {
		ifMatchV, mapped = aws.String(ifMatch), changedErr
	}
	if w.flushed == 0 && w.size <= w.partSize {
		defer w.dropClaim()
		var data []byte
		if len(w.bufs) > 0 {
			data = (*w.bufs[0].b)[:w.size]
		}
		out, err := w.t.s.client.PutObject(ctxBG, &awss3.PutObjectInput{Bucket: w.t.s.bucket, Key: aws.String(key),
			Body: bytesReader(data), ContentLength: aws.Int64(int64(len(data))), IfNoneMatch: ifNoneMatch, IfMatch: ifMatchV,
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
		w.releaseBufs()
		if err == nil {
			w.etag = aws.ToString(out.ETag)
		}
		return mapped("write", w.name, err)
	}
	for w.flushed < w.size {
		if len(w.bufs) == 0 {
			b, err := w.newBuf(false) // a hole at the end
			if err != nil {
				return err
			}
			w.bufs = append(w.bufs, b)
		}
		for len(w.bufs)+w.inflight > w.slots && w.inflight > 0 {
			w.cond.Wait()
		}
		if err := w.sendFront(min(w.partSize, w.size-w.flushed)); err != nil {
			return err
		}
	}
	w.wait()
	w.releaseBufs()
	if w.err != nil {
		return w.err
	}
	etag, err := w.mp.complete(ctxBG, exclusive, ifMatch)
	w.etag = etag
	return mapped("write", w.name, err)
}

// dropClaim aborts an exclusive upload's claim (see Upload.claim) once the
// file went with one PutObject.
func (w *writer) dropClaim() {
	if w.mp != nil {
		_ = w.mp.abort()
		w.mp = nil
	}
}

// claimTTL is how long an exclusive upload's claim on its name keeps other
// exclusive uploads of the name away: one a crashed node left behind stops
// counting after it (and the sweep aborts it later).
const claimTTL = time.Hour

// claim makes an exclusive upload visible to every node as in progress:
// it starts the multipart upload at once, then lists the uploads of the
// key: if another upload of the name is in progress, it fails with
// ErrExist (two claims made at the same moment may both fail; never both
// succeed). Commit is exclusive by itself (If-None-Match); the claim covers
// the time before it.
func (u *Upload) claim(ctx context.Context) error {
	key := u.t.key(u.name)
	mp, err := u.t.s.startMultipart(ctx, key, true)
	if err != nil {
		return mapErr("create", u.name, err)
	}
	out, err := u.t.s.client.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: u.t.s.bucket, Prefix: aws.String(key)})
	if err != nil {
		_ = mp.abort()
		return mapErr("create", u.name, err)
	}
	for _, up := range out.Uploads {
		if aws.ToString(up.Key) == key && aws.ToString(up.UploadId) != aws.ToString(mp.id) && time.Since(aws.ToTime(up.Initiated)) < claimTTL {
			_ = mp.abort()
			return pathErr("create", u.name, fs.ErrExist)
		}
	}
	u.mp = mp
	return nil
}

// Upload is a new file being written (storage.Upload).
type Upload struct {
	writer
	excl      bool
	appending bool
	target    string // where Commit puts the file (Rename changes it)
	committed bool   // Commit put it in place
}

var _ storage.Upload = (*Upload)(nil)

func newUpload(t *Tree, name string, flag int) *Upload {
	u := &Upload{excl: flag&os.O_EXCL != 0, appending: flag&os.O_APPEND != 0, target: name}
	u.init(t, name)
	return u
}

func (u *Upload) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("write", u.target, fs.ErrInvalid)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return 0, pathErr("write", u.target, fs.ErrClosed)
	}
	return u.writeLocked(p, off)
}

func (u *Upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return 0, pathErr("write", u.target, fs.ErrClosed)
	}
	return u.writeLocked(p, u.size)
}

func (u *Upload) ReadAt(p []byte, off int64) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return 0, pathErr("read", u.target, fs.ErrClosed)
	}
	return u.readLocked(p, off)
}

func (u *Upload) Stat() (fs.FileInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return &fileInfo{name: path.Base(u.target), size: u.size, mtime: u.modTime()}, nil
}

// modTime is the time a file being written reports: the one set through
// the handle, or now.
func (w *writer) modTime() time.Time {
	if w.mtime != nil {
		return *w.mtime
	}
	return time.Now()
}

// keepTime keeps the time set through the handle for the file now in place
// at name, or forgets the time kept for what name held before (an object
// written again with the same bytes has the same ETag, and would show it).
// The file is in place whatever happens: a time that cannot be kept or
// forgotten is dropped (the file shows when it was written, or the old
// time).
func (w *writer) keepTime(name string) {
	if w.t.s.times == nil {
		return
	}
	if w.mtime != nil && w.etag != "" {
		_ = w.t.setTime(ctxBG, "chtimes", name, &fileInfo{name: path.Base(name), etag: w.etag}, *w.mtime)
		return
	}
	if w.mtime != nil { // the store did not say which version it wrote
		_ = w.t.setTimeNow(ctxBG, "chtimes", name, *w.mtime)
		return
	}
	if !w.fresh {
		w.t.forgetTimes(ctxBG, name)
	}
}

func (u *Upload) Truncate(size int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return pathErr("truncate", u.target, fs.ErrClosed)
	}
	if size == 0 && u.flushed > 0 {
		return u.restart()
	}
	return u.truncateLocked(size)
}

// Chtimes implements storage.File: times are not kept (see Tree.Chtimes).
func (u *Upload) Chtimes(atime, mtime time.Time) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return pathErr("chtimes", u.target, fs.ErrClosed)
	}
	if u.t.s.times != nil {
		u.mtime = &mtime
	}
	return nil
}

// Sync implements storage.File: the data is made durable by Commit.
func (u *Upload) Sync() error { return nil }

func (u *Upload) Readdir(int) ([]fs.FileInfo, error) {
	return nil, pathErr("readdir", u.target, syscall.ENOTDIR)
}

// Rename implements storage.Upload. Before the first part is sent it only
// changes the key; after, the multipart upload is bound to the first key,
// so Commit completes it there and then copies it to the new name (and the
// old name shows the file for that moment).
func (u *Upload) Rename(newName string) error {
	if err := u.t.check("rename", newName); err != nil {
		return err
	}
	if err := u.t.parentDir(ctxBG, "rename", newName); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return pathErr("rename", u.target, fs.ErrClosed)
	}
	u.target = newName
	u.fresh = false // the new name may hold a file
	if u.mp == nil {
		u.name = newName
	}
	return nil
}

// errReadSent is the reason a read of an upload's bytes already sent fails.
const errReadSent = "a file cannot be read on this storage once part of its upload was sent: read it when the upload is complete"

// Reopen implements storage.Upload: until a part is sent, what was written
// reads from memory, and once the upload is in place, from the new object.
// A multipart upload's parts cannot be read before it completes: after the
// first part is sent, Reopen fails, and reads through a File reopened
// earlier fail for the bytes sent.
func (u *Upload) Reopen() (storage.File, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.done && !u.committed:
		return nil, pathErr("open", u.target, fs.ErrClosed)
	case !u.done && u.flushed > 0:
		return nil, unsupported("open", errReadSent)
	}
	return &uploadView{u: u}, nil
}

// uploadView is an Upload reopened for reading.
type uploadView struct {
	u  *Upload
	mu sync.Mutex
	r  *reader // the object, once the upload is in place
}

var _ storage.File = (*uploadView)(nil)

// object opens the object the upload became, or says why there is none.
func (v *uploadView) object() (*reader, error) {
	v.u.mu.Lock()
	committed, target := v.u.committed, v.u.target
	v.u.mu.Unlock()
	if !committed {
		return nil, pathErr("read", target, fs.ErrNotExist) // the upload was abandoned
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.r == nil {
		fi, err := v.u.t.stat(ctxBG, target)
		if err != nil {
			return nil, err
		}
		v.r = newReader(v.u.t, target, fi)
	}
	return v.r, nil
}

func (v *uploadView) ReadAt(p []byte, off int64) (int, error) {
	v.u.mu.Lock()
	if !v.u.done {
		defer v.u.mu.Unlock()
		return v.u.readLocked(p, off)
	}
	v.u.mu.Unlock()
	r, err := v.object()
	if err != nil {
		return 0, err
	}
	return r.ReadAt(p, off)
}

func (v *uploadView) Stat() (fs.FileInfo, error) {
	v.u.mu.Lock()
	if !v.u.done {
		defer v.u.mu.Unlock()
		return &fileInfo{name: path.Base(v.u.target), size: v.u.size, mtime: v.u.modTime()}, nil
	}
	v.u.mu.Unlock()
	r, err := v.object()
	if err != nil {
		return nil, err
	}
	return r.Stat()
}

func (v *uploadView) Chtimes(atime, mtime time.Time) error {
	v.u.mu.Lock()
	done, target := v.u.done, v.u.target
	v.u.mu.Unlock()
	if !done {
		return v.u.Chtimes(atime, mtime)
	}
	return v.u.t.Chtimes(target, atime, mtime)
}

func (v *uploadView) WriteAt(p []byte, off int64) (int, error) {
	return 0, pathErr("write", v.u.target, syscall.EBADF)
}
func (v *uploadView) Write(p []byte) (int, error) {
	return 0, pathErr("write", v.u.target, syscall.EBADF)
}
func (v *uploadView) Truncate(int64) error { return pathErr("truncate", v.u.target, syscall.EBADF) }
func (v *uploadView) Sync() error          { return nil }
func (v *uploadView) Readdir(int) ([]fs.FileInfo, error) {
	return nil, pathErr("readdir", v.u.target, syscall.ENOTDIR)
}

func (v *uploadView) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.r != nil {
		return v.r.Close()
	}
	return nil
}

// Commit implements storage.Upload.
func (u *Upload) Commit() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return pathErr("commit", u.target, fs.ErrClosed)
	}
	u.done = true
	if err := u.commitLocked(); err != nil {
		return err
	}
	u.committed = true
	u.keepTime(u.target)
	return nil
}

func (u *Upload) commitLocked() error {
	err := u.finish(u.t.key(u.name), u.excl, "")
	if err != nil {
		u.abortLocked()
		return err
	}
	u.mp = nil
	if u.name != u.target { // renamed after the first part was sent
		defer u.t.changed()
		if u.excl {
			if _, err := u.t.stat(ctxBG, u.target); err == nil {
				_, _ = u.t.s.client.DeleteObject(ctxBG, &awss3.DeleteObjectInput{Bucket: u.t.s.bucket, Key: aws.String(u.t.key(u.name))})
				return pathErr("commit", u.target, fs.ErrExist)
			}
		}
		if u.etag, err = u.t.s.copyObject(ctxBG, u.t.key(u.name), u.t.key(u.target), u.size); err != nil {
			return mapErr("commit", u.target, err)
		}
		_, err := u.t.s.client.DeleteObject(ctxBG, &awss3.DeleteObjectInput{Bucket: u.t.s.bucket, Key: aws.String(u.t.key(u.name))})
		return mapErr("commit", u.target, err)
	}
	return nil
}

// Close implements storage.Upload: without Commit, the multipart upload is
// aborted.
func (u *Upload) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done && u.mp == nil && u.bufs == nil {
		return nil
	}
	u.done = true
	return u.abortLocked()
}

func (u *Upload) abortLocked() error {
	u.wait()
	u.releaseBufs()
	if u.mp == nil {
		return nil
	}
	mp := u.mp
	u.mp = nil
	if err := mp.abort(); err != nil {
		return mapErr("abort", u.target, errors.Join(errors.New("could not abort the unfinished upload"), err))
	}
	return nil
}
