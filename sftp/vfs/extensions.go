package vfs

// The extensions OpenSSH 9's sftp-server offers beyond the first four, and
// the checksum extension of draft-ietf-secsh-filexfer-extensions:
//
//   - fstatvfs@openssh.com: statvfs of an open handle's path.
//   - lsetstat@openssh.com: setstat; there are no links for it to differ on.
//   - expand-path@openssh.com: realpath that expands "~" and "~/x".
//   - home-directory: the user's home, for the empty user name.
//   - copy-data: a server-side copy between two open handles (sftp's cp).
//   - users-groups-by-id@openssh.com: the names long names show for ids.
//   - check-file-name, check-file-handle (and "check-file", paramiko's name
//     for the latter): md5, sha1, sha256 or sha512 of a file, whole or by
//     blocks, streamed.
//
// The home is the session's start directory (StartDirectory): /My Files, or
// /Projects Shared With Me for jailed users. Other users' homes do not exist
// for the client ("~name" and a non-empty home-directory user name answer
// "no such file").

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"math"
	"strings"

	"github.com/skiffhq/skiff/storage"
)

const (
	extFstatVFS        = "fstatvfs@openssh.com"
	extLsetstat        = "lsetstat@openssh.com"
	extExpandPath      = "expand-path@openssh.com"
	extHomeDirectory   = "home-directory"
	extCopyData        = "copy-data"
	extUsersGroupsByID = "users-groups-by-id@openssh.com"
	extCheckFileName   = "check-file-name"
	extCheckFileHandle = "check-file-handle"
	extCheckFile       = "check-file" // paramiko's SFTPFile.check; not announced
)

var (
	errNoSuchUser      = status(fxNoSuchFile, "no such user")
	errCopySame        = status(fxFailure, msgFailure) // one file both sides, refused as OpenSSH does
	errNoHashAlg       = status(fxOpUnsupported, "no supported hash algorithm (md5, sha1, sha256, sha512)")
	errBlockSize       = status(fxFailure, "invalid block size: 0 or at least 256")
	errTooManyBlocks   = status(fxFailure, "too many blocks for one reply: use a larger block size or a shorter range")
	errInvalidArgument = status(fxFailure, "invalid argument")
)

// HomeDirectory is the user's home as "~" expands it: the start directory.
func (s *Session) HomeDirectory() string { return s.StartDirectory() }

// expandPath is realPath with a leading "~" or "~/" taken from the home.
func (s *Session) expandPath(p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "~"); ok {
		user, _, _ := strings.Cut(rest, "/")
		if user != "" {
			if err := s.allow(s.ctx); err != nil {
				return "", err
			}
			return "", errNoSuchUser
		}
		p = s.HomeDirectory() + rest
	}
	return s.realPath(p)
}

func (c *conn) serveExpandPath(id uint32, d decoder) {
	p := d.str()
	if c.malformed(id, &d) {
		return
	}
	vpath, err := c.s.expandPath(p)
	c.sendRealPath(id, vpath, err)
}

func (c *conn) serveHomeDirectory(id uint32, d decoder) {
	user := d.bytes()
	if c.malformed(id, &d) {
		return
	}
	err := c.s.allow(c.s.ctx)
	if err == nil && len(user) != 0 {
		err = errInternal // OpenSSH's answer for a user it does not know
	}
	c.sendRealPath(id, c.s.HomeDirectory(), err)
}

// sendStatVFS answers statvfs@openssh.com and fstatvfs@openssh.com.
func (c *conn) sendStatVFS(id uint32, st *statVFS, err error) {
	if err != nil {
		c.sendStatus(id, err)
		return
	}
	c.sendUint64s(id, st.bsize, st.frsize, st.blocks, st.bfree, st.bavail,
		st.files, st.ffree, st.favail, st.fsid, st.flag, st.namemax)
}

// serveFstatVFS is statvfs of the path the handle was opened with.
func (c *conn) serveFstatVFS(id uint32, d decoder) {
	oh := c.handle(d.bytes())
	if c.malformed(id, &d) {
		return
	}
	if oh == nil || oh.file == nil { // a directory handle has no descriptor, as in OpenSSH
		c.sendStatus(id, errBadHandle)
		return
	}
	st, err := c.s.statvfs(oh.file.vpath)
	c.sendStatVFS(id, st, err)
}

// serveUsersGroupsByID answers the names of the user and group ids asked
// for, in their order: two strings, each a list of strings.
func (c *conn) serveUsersGroupsByID(id uint32, d decoder) {
	uids, gids := d.bytes(), d.bytes()
	if c.malformed(id, &d) {
		return
	}
	if len(uids)%4 != 0 || len(gids)%4 != 0 {
		c.sendStatus(id, errBadMessage)
		return
	}
	if err := c.s.allow(c.s.ctx); err != nil {
		c.sendStatus(id, err)
		return
	}
	// Each id takes 4 bytes asked and 4 plus the name's length answered.
	owner := c.s.ownerName()
	size := 4 + 1 + 4 + 8 + (len(uids)+len(gids))/4*(4+len(owner))
	if size > maxPacket {
		c.sendStatus(id, errInvalidArgument)
		return
	}
	b := getBuffer(size)
	b.b = startPacket(b.b, fxpExtendedReply, id)
	for _, ids := range [2][]byte{uids, gids} {
		at := len(b.b)
		b.b = append(b.b, 0, 0, 0, 0)
		for i := 0; i < len(ids); i += 4 {
			// The name long names show for every owner and group
			// (appendLongname), so that OpenSSH's sftp, which lays out
			// "ls -l" itself once the server offers the extension,
			// shows what the long names show.
			b.b = appendString(b.b, owner)
		}
		binary.BigEndian.PutUint32(b.b[at:], uint32(len(b.b)-at-4))
	}
	c.send(b)
}

// serveCopyData copies a range of one open file to another (copy-data):
// read-from handle, offset, length (0: to the end), write-to handle,
// offset. The source must be open for reading with the Download right, the
// destination for writing: the rights of a READ and a WRITE.
func (c *conn) serveCopyData(id uint32, d decoder) {
	rname, roff, rlen := d.bytes(), d.u64(), d.u64()
	wname, woff := d.bytes(), d.u64()
	if c.malformed(id, &d) {
		return
	}
	src, err := c.lookup(rname, false)
	if err != nil {
		c.sendStatus(id, err)
		return
	}
	dst, err := c.lookup(wname, false)
	if err != nil {
		c.sendStatus(id, err)
		return
	}
	before := dst.file.moved.Load()
	err = dst.file.copyFrom(src.file, roff, rlen, woff)
	src.file.copySource = true
	c.s.recordCopy(src.file, dst.file, dst.file.moved.Load()-before, err)
	c.sendStatus(id, err)
}

// copyChunk is how much copyFrom copies between two checks of the gate
// and of the destination's write accounting.
const copyChunk = 8 << 20

// copyFrom copies n bytes (0: to the end) of src at roff to h at woff, in
// the kernel where it can (copy_file_range; a reflink on file systems that
// share blocks), else through one pooled buffer. Every chunk goes through
// the same checks and accounting as a WRITE (startWrite, wrote).
func (h *handle) copyFrom(src *handle, roff, n, woff uint64) error {
	switch {
	case !src.canRead && src.noReadRight:
		return errDenied
	case !src.canRead, !h.canWrite:
		return errBadFD // EBADF, as OpenSSH
	case src == h || src.vpath == h.vpath:
		// OpenSSH refuses a copy within one handle or one path.
		return errCopySame
	}
	if roff > math.MaxInt64 || woff > math.MaxInt64 {
		return errInvalidArgument
	}
	if n == 0 { // to the end: as far as offsets go
		n = math.MaxInt64 - max(roff, woff)
	}
	if n > math.MaxInt64-roff || n > math.MaxInt64-woff {
		return errInvalidArgument
	}
	r, w, left := int64(roff), int64(woff), int64(n)
	if fi, err := src.f.Stat(); err == nil {
		// No more than the source holds: each chunk's write is checked
		// against the quota before it is copied (startWrite).
		left = min(left, max(fi.Size()-r, 0))
	}
	for left > 0 {
		if h.s.ending.Err() != nil {
			// The session ended: the copy is not finished, and an upload
			// it was writing must not be kept by a close read after it.
			h.failed.Store(true)
			return errSessionEnded
		}
		chunk := min(left, copyChunk)
		if err := h.startWrite(w, chunk); err != nil {
			return err
		}
		got, err := h.copyChunk(src, r, w, chunk)
		if err := h.wrote(got, err); err != nil {
			return err
		}
		if got == 0 {
			return nil // the source's end
		}
		r, w, left = r+int64(got), w+int64(got), left-int64(got)
	}
	return nil
}

// copyChunk copies up to n bytes of src at roff to h at woff (at its end
// when appending); 0 at the source's end.
func (h *handle) copyChunk(src *handle, roff, woff, n int64) (int, error) {
	if !h.appending {
		if c, ok := h.f.(storage.RangeCopier); ok {
			got, err := c.CopyRange(src.f, roff, woff, n)
			if !errors.Is(err, storage.ErrUnsupported) {
				return got, err
			}
		}
	}
	buf := getBuffer(maxPacket + 4)
	defer buf.put()
	b := buf.b[:cap(buf.b)]
	done := 0
	for int64(done) < n {
		m, rerr := src.f.ReadAt(b[:min(int64(len(b)), n-int64(done))], roff+int64(done))
		if m > 0 {
			var werr error
			if h.appending {
				_, werr = h.f.Write(b[:m])
			} else {
				_, werr = h.f.WriteAt(b[:m], woff+int64(done))
			}
			if werr != nil {
				return done, werr
			}
			done += m
		}
		if rerr == io.EOF {
			return done, nil
		}
		if rerr != nil {
			return done, rerr
		}
	}
	return done, nil
}

// A hashAlg is a checksum the server computes.
type hashAlg struct {
	name string
	new  func() hash.Hash
}

var hashAlgs = [...]hashAlg{
	{"md5", md5.New},
	{"sha1", sha1.New},
	{"sha256", sha256.New},
	{"sha512", sha512.New},
}

// HashAlgorithm returns the hash of a name (md5, sha1, sha256, sha512).
func HashAlgorithm(name string) (func() hash.Hash, bool) {
	for _, a := range hashAlgs {
		if a.name == name {
			return a.new, true
		}
	}
	return nil, false
}

// pickHash is the first algorithm of a client's comma-separated list the
// server knows.
func pickHash(list []byte) (hashAlg, bool) {
	for name := range strings.SplitSeq(string(list), ",") {
		for _, a := range hashAlgs {
			if a.name == name {
				return a, true
			}
		}
	}
	return hashAlg{}, false
}

// checkFile serves check-file-name (byName) and check-file-handle: the
// file (a path, or a handle open for reading with the Download right), a
// list of algorithms, a start offset, a length (0: to the end) and a block
// size (0: one hash of the whole range; else at least 256, a hash per
// block). The reply names the algorithm used and carries the hashes, the
// file streamed through one pooled buffer.
func (c *conn) checkFile(id uint32, d decoder, byName bool) {
	target, algs, start, length, block := d.bytes(), d.bytes(), d.u64(), d.u64(), d.u32()
	if c.malformed(id, &d) {
		return
	}
	alg, ok := pickHash(algs)
	switch {
	case !ok:
		c.sendStatus(id, errNoHashAlg)
		return
	case block != 0 && block < 256:
		c.sendStatus(id, errBlockSize)
		return
	}
	var h *handle
	if byName {
		var err error
		if h, err = c.s.openRead(string(target)); err != nil {
			c.sendStatus(id, err)
			return
		}
		defer h.Close()
	} else {
		oh, err := c.lookup(target, false)
		if err != nil {
			c.sendStatus(id, err)
			return
		}
		h = oh.file
	}
	if !h.canRead {
		c.sendStatus(id, errDenied)
		return
	}
	if err := c.s.allow(c.s.ctx); err != nil {
		c.sendStatus(id, err)
		return
	}
	fi, err := h.f.Stat()
	if err != nil {
		c.sendStatus(id, c.s.failPath("fstat", h.vpath, err))
		return
	}
	// The range, cut at the end of the file.
	size := uint64(max(fi.Size(), 0))
	end := size
	if length != 0 && start <= size && length < size-start {
		end = start + length
	}
	start = min(start, end)
	blocks := uint64(1)
	if block != 0 {
		blocks = (end - start + uint64(block) - 1) / uint64(block)
	}
	sum := alg.new()
	head := 4 + 1 + 4 + 4 + len(extCheckFile) + 4 + len(alg.name)
	if uint64(head)+blocks*uint64(sum.Size()) > maxPacket {
		c.sendStatus(id, errTooManyBlocks)
		return
	}
	b := getBuffer(head + int(blocks)*sum.Size())
	b.b = startPacket(b.b, fxpExtendedReply, id)
	b.b = appendString(appendString(b.b, extCheckFile), alg.name)
	// The hashing may read a large file for minutes: it stops when the
	// session ends (access was withdrawn, the server stopped) or the
	// client has left, rather than when it is done.
	ctx := c.s.unheard
	if block == 0 {
		err = hashRange(ctx, sum, h, int64(start), int64(end-start))
		b.b = sum.Sum(b.b)
	} else {
		for off := start; off < end && err == nil; off += uint64(block) {
			sum.Reset()
			err = hashRange(ctx, sum, h, int64(off), int64(min(uint64(block), end-off)))
			b.b = sum.Sum(b.b)
		}
	}
	if err != nil {
		b.put()
		c.sendStatus(id, err)
		return
	}
	c.send(b)
}

func (c *conn) serveCheckFileName(id uint32, d decoder)   { c.checkFile(id, d, true) }
func (c *conn) serveCheckFileHandle(id uint32, d decoder) { c.checkFile(id, d, false) }

// hashRange feeds n bytes of h at off to sum (fewer if the file is
// shorter), through one pooled buffer, until ctx ends.
func hashRange(ctx context.Context, sum hash.Hash, h *handle, off, n int64) error {
	return copyStream(sum, ctxReader{ctx, io.NewSectionReader(h, off, n)})
}

// copyStream copies r to w through one pooled buffer.
func copyStream(w io.Writer, r io.Reader) error {
	buf := getBuffer(maxPacket + 4)
	defer buf.put()
	_, err := io.CopyBuffer(w, r, buf.b[:cap(buf.b)])
	return err
}

// HashFile feeds the file at p (a client path; relative ones start at the
// start directory) to sum, streamed, until ctx or the session ends: it needs the rights of
// a download. Its errors say what coreutils' md5sum says ("No such file or
// directory", "Permission denied", "Is a directory"), or the reason Skiff
// refused; once the Gate has ended the session they also match ErrDenied.
func (s *Session) HashFile(ctx context.Context, p string, sum hash.Hash) error {
	h, err := s.openRead(p)
	if err == nil {
		ctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(s.unheard, cancel)
		err = copyStream(sum, ctxReader{ctx, io.NewSectionReader(h, 0, math.MaxInt64)})
		stop()
		cancel()
		h.Close()
	}
	switch {
	case err == nil:
		return nil
	case s.isDenied.Load():
		return deniedError{err}
	}
	return errors.New(toolText(err))
}

// toolText is an error as a command-line tool words it (strerror).
func toolText(err error) string {
	var se *statusError
	switch {
	case errors.Is(err, errIsDir):
		return "Is a directory"
	case !errors.As(err, &se):
		return err.Error()
	case se.code == fxNoSuchFile:
		return "No such file or directory"
	case se == errDenied:
		return "Permission denied"
	}
	msg := se.msg
	if msg != "" && msg[0] >= 'a' && msg[0] <= 'z' {
		msg = string(msg[0]-'a'+'A') + msg[1:]
	}
	return msg
}

// deniedError is an error of a session the Gate ended.
type deniedError struct{ error }

func (deniedError) Is(target error) bool { return target == ErrDenied }

// ctxReader stops reading once its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
