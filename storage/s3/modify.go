package s3

import (
	"fmt"
	"io"
	"io/fs"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/skiffhq/skiff/storage"
)

// Writing an existing file in place (resume, append, overwrite from an
// offset). An object cannot be changed, only replaced: the first write at
// offset W starts a new version, made of the old object's first W bytes
// (copied by the server, UploadPartCopy, when there are at least 5 MiB of
// them; read and re-sent otherwise), then what the client writes, then,
// if the client stopped short of the old end, the rest of the old object
// (copied the same way). A write past the new version's end first fills
// the gap with the old object's bytes there, as a disk keeps them (a
// client patching a file in two places, writes arriving out of order);
// a truncation ends what is kept of the old object. It replaces the object
// when the file is closed, in one step. Reads before the first write read
// the object; after it, what is in memory, and past it the old object's
// bytes that the new version will keep; what was already sent cannot be
// read back (as for an upload).

type modify struct {
	writer
	base    *fileInfo // the object as it was when opened
	r       *reader   // reads before the first write
	started bool      // the new version is being written
	// keep is how much of the old object the new version keeps where the
	// client does not write: its size, less after a truncation.
	keep int64
	tail *reader // reads of kept old bytes past the new version's end
}

var _ storage.File = (*modify)(nil)

func newModify(t *Tree, name string, fi *fileInfo) *modify {
	m := &modify{base: fi, r: newReader(t, name, fi), keep: fi.size}
	m.init(t, name)
	m.noSums = true
	return m
}

// begin starts the new version with the old object's bytes up to off.
func (m *modify) begin(off int64) error {
	m.started = true
	m.r.Close()
	return m.fillTo(off)
}

// fillTo extends the new version with the old object's bytes up to off,
// as far as they are kept.
func (m *modify) fillTo(off int64) error {
	if end := min(off, m.keep); end > m.size {
		return m.fromBase(m.size, end)
	}
	return nil
}

// end is the size of the file as the handle shows it.
func (m *modify) end() int64 { return max(m.size, m.keep) }

// fromBase appends the old object's bytes [from, to) to the new version:
// server-side copies of at least MinPartSize bytes where the new version is
// at a part boundary, bytes read and written otherwise. Every copied part
// is at least MinPartSize, S3's smallest part but the last, since more may
// be written after it.
func (m *modify) fromBase(from, to int64) error {
	for from < to {
		rem := to - from
		if m.size == m.flushed && len(m.bufs) == 0 && rem >= MinPartSize {
			n := rem
			if n > maxCopyPart {
				n = maxCopyPart
				if rem-n < MinPartSize {
					n = rem - MinPartSize
				}
			}
			if err := m.copyFromBase(from, n); err != nil {
				return err
			}
			from += n
			continue
		}
		n := min(rem, m.partSize-(m.size-m.flushed)%m.partSize)
		if err := m.readFromBase(from, n); err != nil {
			return err
		}
		from += n
	}
	return nil
}

func (m *modify) copyFromBase(off, n int64) error {
	if m.mp == nil {
		mp, err := m.t.s.startMultipart(ctxBG, m.t.key(m.name), false)
		if err != nil {
			return mapErr("write", m.name, err)
		}
		m.mp = mp
	}
	m.wait()
	if m.err != nil {
		return m.err
	}
	if err := m.mp.copyPart(ctxBG, m.t.key(m.name), m.base.etag, off, n); err != nil {
		return changedErr("write", m.name, err)
	}
	m.flushed += n
	m.size += n
	return nil
}

// readFromBase reads n bytes of the old object at off and writes them at
// the new version's end, 256 KiB at a time.
func (m *modify) readFromBase(off, n int64) error {
	in := &awss3.GetObjectInput{Bucket: m.t.s.bucket, Key: aws.String(m.t.key(m.name)),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))}
	if m.base.etag != "" {
		in.IfMatch = aws.String(m.base.etag)
	}
	out, err := m.t.s.client.GetObject(ctxBG, in, quietChecksums)
	if err != nil {
		return changedErr("write", m.name, err)
	}
	defer out.Body.Close()
	buf := make([]byte, min(n, 256<<10))
	for n > 0 {
		c, err := io.ReadFull(out.Body, buf[:min(n, int64(len(buf)))])
		if c > 0 {
			if _, werr := m.writeLocked(buf[:c], m.size); werr != nil {
				return werr
			}
			n -= int64(c)
		}
		if err != nil && n > 0 {
			return mapErr("write", m.name, fmt.Errorf("reading the file's old content: %w", err))
		}
	}
	return nil
}

func (m *modify) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("write", m.name, fs.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return 0, pathErr("write", m.name, fs.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil // changes nothing, as pwrite(2): no new version
	}
	start := m.begin
	if m.started {
		start = m.fillTo
	}
	if err := start(off); err != nil {
		m.err = err
		return 0, err
	}
	return m.writeLocked(p, off)
}

func (m *modify) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return 0, pathErr("write", m.name, fs.ErrClosed)
	}
	if !m.started {
		if err := m.begin(m.base.size); err != nil {
			m.err = err
			return 0, err
		}
	}
	return m.writeLocked(p, m.size)
}

func (m *modify) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	if !m.started {
		m.mu.Unlock()
		return m.r.ReadAt(p, off)
	}
	defer m.mu.Unlock()
	end := m.end()
	if len(p) == 0 {
		return 0, nil // as pread(2), at any offset
	}
	if off >= end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), end-off)]
	n := 0
	if off < m.size {
		var err error
		n, err = m.readLocked(p[:min(int64(len(p)), m.size-off)], off)
		if err != nil && err != io.EOF {
			return n, err
		}
	}
	if n < len(p) { // kept bytes of the old object, past the new version's end
		if m.tail == nil {
			m.tail = newReader(m.t, m.name, m.base)
		}
		k, err := m.tail.ReadAt(p[n:], off+int64(n))
		n += k
		if err != nil && err != io.EOF {
			return n, err
		}
	}
	if off+int64(n) >= end {
		return n, io.EOF
	}
	return n, nil
}

func (m *modify) Stat() (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return m.r.Stat()
	}
	return &fileInfo{name: m.base.name, size: m.end(), mtime: m.modTime()}, nil
}

// Truncate implements storage.File: to zero, or to a size at or beyond
// what was already sent.
func (m *modify) Truncate(size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return pathErr("truncate", m.name, fs.ErrClosed)
	}
	if size < 0 {
		return pathErr("truncate", m.name, fs.ErrInvalid)
	}
	start := m.begin
	if m.started {
		start = m.fillTo
	}
	if err := start(size); err != nil {
		m.err = err
		return err
	}
	if size == 0 {
		if err := m.restart(); err != nil {
			return err
		}
	}
	if err := m.truncateLocked(size); err != nil {
		return err
	}
	m.keep = min(m.keep, size)
	return nil
}

// Chtimes implements storage.File: before the first write, the time of the
// object as it is; after, of the new version once in place (Close).
func (m *modify) Chtimes(atime, mtime time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return pathErr("chtimes", m.name, fs.ErrClosed)
	}
	if !m.started {
		return m.r.Chtimes(atime, mtime)
	}
	if m.t.s.times != nil {
		m.mtime = &mtime
	}
	return nil
}
func (m *modify) Sync() error { return nil }
func (m *modify) Readdir(int) ([]fs.FileInfo, error) {
	return nil, pathErr("readdir", m.name, syscall.ENOTDIR)
}

// Close implements storage.File: the new version, if one was started,
// replaces the object now; an error means it did not.
func (m *modify) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return nil
	}
	m.done = true
	if !m.started {
		return m.r.Close()
	}
	if m.tail != nil {
		m.tail.Close()
	}
	err := m.err
	if err == nil {
		err = m.fillTo(m.keep)
	}
	if err == nil {
		err = m.finish(m.t.key(m.name), false, m.base.etag)
		if err == nil {
			m.keepTime(m.name)
			return nil
		}
	}
	m.wait()
	m.releaseBufs()
	if m.mp != nil {
		_ = m.mp.abort()
	}
	return err
}
