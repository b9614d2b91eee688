package vfs

// The SFTP server of one channel: SFTP version 3 as OpenSSH's sftp-server
// speaks it, with the extensions clients use (limits, posix-rename,
// statvfs, fsync).
//
// One goroutine, the caller's (Session.Serve), reads requests and carries
// each out before reading the next, so requests take effect in the order
// they came and an idle channel costs that goroutine alone. Each reply goes
// to the channel in one Write: a small one straight from the reader when
// nothing else is waiting, others through a short queue that a writer
// goroutine sends, started when a reply is queued and gone once the queue
// is empty. During a
// download the reader reads the next block from the file while the writer
// sends the last one through SSH; during an upload the reader writes to the
// file while the writer sends the statuses. Buffers come from pools and at
// most maxQueued replies wait per channel, which bounds a channel's memory
// to a few hundred KiB whatever the client pipelines.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// maxQueued is how many replies a channel holds unsent: 16 reads of
// 255 KiB are twice the 2 MiB SSH window. The window alone would need 8,
// but on a busy machine the reader is sometimes scheduled late: with 8, four
// parallel downloads on 2 cores (bench/) lost a fifth of their speed; with
// 16 they are as fast as pkg/sftp was with 16 requests in flight.
const maxQueued = 16

// inlineReply is the largest reply the reader sends itself when the queue
// is empty; larger ones (data) go to the writer, so that the reader can go
// on reading the file meanwhile.
const inlineReply = 4 << 10

// errProtocol ends a channel whose client does not speak SFTP.
var errProtocol = errors.New("vfs: SFTP protocol violation")

// A READDIR reply holds at most readdirBatch entries and readdirSize
// bytes: a few hundred entries (OpenSSH's server sends 100), in a buffer of
// the middle class.
const (
	readdirBatch = 128
	readdirSize  = 64 << 10
)

// conn serves one channel.
type conn struct {
	s   *Session
	ch  io.ReadWriteCloser
	hdr [4]byte

	handles  map[string]*openHandle // made on first open
	lastID   uint64
	writeErr atomic.Bool // the writer failed: the channel is gone

	mu      sync.Mutex
	cond    sync.Cond // signalled when a reply is sent and when the writer stops
	queue   [maxQueued]*buffer
	head, n int  // queued replies
	unsent  int  // queued, or being written
	writing bool // the writer goroutine runs
	werr    error
}

// openHandle is what a handle string names: a file or a directory listing.
type openHandle struct {
	file *handle

	dir   lister
	vpath string // the directory's path, for FSETSTAT
	off   int64  // entries taken from dir so far
	rest  []os.FileInfo
	eof   bool
}

func newConn(s *Session, ch io.ReadWriteCloser) *conn {
	c := &conn{s: s, ch: ch}
	c.cond.L = &c.mu
	return c
}

// serve runs the channel until the client or the session ends it. It
// returns the error that ended it; nil once a refusal was sent.
func (c *conn) serve() error {
	if err := c.handshake(); err != nil {
		return err
	}
	for {
		req, err := c.readPacket()
		if err == io.EOF {
			// The client sent its last request (and may have closed only
			// its side): it still gets the replies.
			c.flush()
		}
		if err != nil {
			return err
		}
		if c.s.isDenied.Load() {
			// Another channel's request ended the session: no request
			// runs any more, this one gets the refusal.
			if len(req.b) >= 5 {
				c.sendStatus(binary.BigEndian.Uint32(req.b[1:]), errSessionEnded)
			}
			req.put()
			return c.flush()
		}
		err = c.dispatch(req.b)
		req.put()
		if err != nil {
			return err
		}
		if c.s.isDenied.Load() {
			// The client reads "permission denied", then the channel
			// closes.
			return c.flush()
		}
		if c.writeErr.Load() {
			return c.writerError()
		}
	}
}

// readPacket reads the next request whole.
func (c *conn) readPacket() (*buffer, error) {
	if _, err := io.ReadFull(c.ch, c.hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(c.hdr[:])
	if n == 0 || n > maxPacket {
		return nil, fmt.Errorf("%w: packet of %d bytes", errProtocol, n)
	}
	b := getBuffer(int(n))
	b.b = b.b[:n]
	if _, err := io.ReadFull(c.ch, b.b); err != nil {
		b.put()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// handshake answers the client's INIT with the version and extensions.
func (c *conn) handshake() error {
	req, err := c.readPacket()
	if err != nil {
		return err
	}
	typ := req.b[0]
	req.put()
	if typ != fxpInit {
		return fmt.Errorf("%w: first packet of type %d, not INIT", errProtocol, typ)
	}
	// Whatever version the client offers, the server speaks 3, as
	// OpenSSH's does; clients that need more give up themselves.
	b := getBuffer(256)
	b.b = startPacket(b.b, fxpVersion, 3)
	for _, ext := range [...][2]string{
		{extPosixRename, "1"}, {extStatVFS, "2"}, {extFsync, "1"}, {extLimits, "1"},
	} {
		b.b = appendString(appendString(b.b, ext[0]), ext[1])
	}
	c.send(b)
	return nil
}

// dispatch carries out one request and queues its reply. It returns an
// error only when the channel must end.
func (c *conn) dispatch(p []byte) error {
	typ := p[0]
	d := decoder{b: p[1:]}
	id := d.u32()
	if d.bad {
		return fmt.Errorf("%w: packet of type %d without a request ID", errProtocol, typ)
	}
	s := c.s
	switch typ {
	case fxpInit:
		return fmt.Errorf("%w: second INIT", errProtocol)
	case fxpOpen:
		p, pflags, _ := d.str(), d.u32(), d.attrs()
		if d.bad {
			break
		}
		if len(c.handles) >= maxHandles {
			c.sendStatus(id, errTooManyHandles)
			return nil
		}
		var h *handle
		var err error
		if pflags&(fxfWrite|fxfAppend|fxfCreat|fxfTrunc) != 0 {
			h, err = s.openWrite(p, pflags)
		} else {
			h, err = s.openRead(p)
		}
		if err != nil {
			c.sendStatus(id, err)
			return nil
		}
		c.sendHandle(id, &openHandle{file: h})
		return nil
	case fxpOpendir:
		p := d.str()
		if d.bad {
			break
		}
		if len(c.handles) >= maxHandles {
			c.sendStatus(id, errTooManyHandles)
			return nil
		}
		l, vpath, err := s.list(p)
		if err != nil {
			c.sendStatus(id, err)
			return nil
		}
		c.sendHandle(id, &openHandle{dir: l, vpath: vpath})
		return nil
	case fxpClose:
		name := d.bytes()
		if d.bad {
			break
		}
		oh := c.handles[string(name)]
		if oh == nil {
			c.sendStatus(id, errBadHandle)
			return nil
		}
		delete(c.handles, string(name))
		c.sendStatus(id, oh.close())
		return nil
	case fxpRead:
		oh, off, n := c.handle(d.bytes()), d.u64(), d.u32()
		if d.bad {
			break
		}
		c.read(id, oh, off, n)
		return nil
	case fxpWrite:
		oh, off, data := c.handle(d.bytes()), d.u64(), d.bytes()
		if d.bad {
			break
		}
		c.sendStatus(id, c.write(oh, off, data))
		return nil
	case fxpStat, fxpLstat:
		p := d.str()
		if d.bad {
			break
		}
		fi, err := s.stat(p, typ == fxpStat)
		c.sendAttrs(id, fi, err)
		return nil
	case fxpFstat:
		oh := c.handle(d.bytes())
		if d.bad {
			break
		}
		c.fstat(id, oh)
		return nil
	case fxpSetstat:
		p, a := d.str(), d.attrs()
		if d.bad {
			break
		}
		c.sendStatus(id, s.setstat(p, a))
		return nil
	case fxpFsetstat:
		oh, a := c.handle(d.bytes()), d.attrs()
		if d.bad {
			break
		}
		if oh == nil {
			c.sendStatus(id, errBadHandle)
			return nil
		}
		if oh.file != nil {
			c.sendStatus(id, oh.file.setattrs(a))
			return nil
		}
		c.sendStatus(id, s.setstat(oh.vpath, a))
		return nil
	case fxpReaddir:
		oh := c.handle(d.bytes())
		if d.bad {
			break
		}
		c.readdir(id, oh)
		return nil
	case fxpRemove, fxpRmdir:
		p := d.str()
		if d.bad {
			break
		}
		c.sendStatus(id, s.remove(p, typ == fxpRmdir))
		return nil
	case fxpMkdir:
		p, _ := d.str(), d.attrs()
		if d.bad {
			break
		}
		c.sendStatus(id, s.mkdir(p))
		return nil
	case fxpRealpath:
		p := d.str()
		if d.bad {
			break
		}
		vpath, err := s.realPath(p)
		c.sendRealPath(id, vpath, err)
		return nil
	case fxpRename:
		from, to := d.str(), d.str()
		if d.bad {
			break
		}
		c.sendStatus(id, s.rename(from, to, false))
		return nil
	case fxpReadlink, fxpSymlink:
		c.sendStatus(id, s.refuseLink())
		return nil
	case fxpExtended:
		name := d.bytes()
		if d.bad {
			break
		}
		return c.extended(id, string(name), &d)
	default:
		c.sendStatus(id, errUnsupported)
		return nil
	}
	c.sendStatus(id, errBadMessage)
	return nil
}

// extended serves SSH_FXP_EXTENDED requests; d holds the fields after the
// extension's name.
func (c *conn) extended(id uint32, name string, d *decoder) error {
	s := c.s
	switch name {
	case extLimits:
		c.sendUint64s(id, maxPacket, maxTxPacket, maxTxPacket, maxHandles)
		return nil
	case extPosixRename:
		from, to := d.str(), d.str()
		if d.bad {
			break
		}
		c.sendStatus(id, s.rename(from, to, true))
		return nil
	case extStatVFS:
		p := d.str()
		if d.bad {
			break
		}
		st, err := s.statvfs(p)
		if err != nil {
			c.sendStatus(id, err)
			return nil
		}
		c.sendUint64s(id, st.bsize, st.frsize, st.blocks, st.bfree, st.bavail,
			st.files, st.ffree, st.favail, st.fsid, st.flag, st.namemax)
		return nil
	case extFsync:
		oh := c.handle(d.bytes())
		if d.bad {
			break
		}
		c.sendStatus(id, c.fsync(oh))
		return nil
	case extHardlink:
		c.sendStatus(id, s.refuseLink())
		return nil
	default:
		c.sendStatus(id, errUnsupported)
		return nil
	}
	c.sendStatus(id, errBadMessage)
	return nil
}

// sendUint64s answers with an extended reply of integers.
func (c *conn) sendUint64s(id uint32, vs ...uint64) {
	b := getBuffer(16 + 8*len(vs))
	b.b = startPacket(b.b, fxpExtendedReply, id)
	for _, v := range vs {
		b.b = binary.BigEndian.AppendUint64(b.b, v)
	}
	c.send(b)
}

// handle finds an open handle; nil for one the channel does not hold.
func (c *conn) handle(name []byte) *openHandle {
	return c.handles[string(name)]
}

// sendHandle registers oh and answers with its handle string.
func (c *conn) sendHandle(id uint32, oh *openHandle) {
	if c.handles == nil {
		c.handles = make(map[string]*openHandle)
	}
	c.lastID++
	var num [20]byte
	name := string(strconv.AppendUint(num[:0], c.lastID, 10))
	c.handles[name] = oh
	b := getBuffer(64)
	b.b = appendString(startPacket(b.b, fxpHandle, id), name)
	c.send(b)
}

func (oh *openHandle) close() error {
	if oh.file != nil {
		return oh.file.Close()
	}
	if cl, ok := oh.dir.(io.Closer); ok {
		if err := cl.Close(); err != nil {
			return errInternal
		}
	}
	return nil
}

// read answers a READ with up to maxTxPacket bytes, read straight into
// the reply.
func (c *conn) read(id uint32, oh *openHandle, off uint64, n uint32) {
	switch {
	case oh == nil:
		c.sendStatus(id, errBadHandle)
		return
	case oh.file == nil:
		c.sendStatus(id, errIsDir)
		return
	case off > math.MaxInt64:
		c.sendStatus(id, io.EOF)
		return
	}
	n = min(n, maxTxPacket)
	const head = 4 + 1 + 4 + 4 // length, type, ID, data length
	b := getBuffer(head + int(n))
	b.b = startPacket(b.b, fxpData, id)
	b.b = b.b[:head+int(n)]
	got, err := oh.file.ReadAt(b.b[head:], int64(off))
	// A zero-length read, allowed, answers empty DATA as OpenSSH does.
	if got == 0 && (n != 0 || err != nil) {
		b.put()
		if err == nil {
			err = io.EOF
		}
		c.sendStatus(id, err)
		return
	}
	// A short read is a reply too; an error shows on the next request.
	b.b = b.b[:head+got]
	binary.BigEndian.PutUint32(b.b[head-4:], uint32(got))
	c.send(b)
}

func (c *conn) write(oh *openHandle, off uint64, data []byte) error {
	switch {
	case oh == nil:
		return errBadHandle
	case oh.file == nil:
		return errIsDir
	case off > math.MaxInt64-uint64(len(data)):
		return status(fxFailure, "invalid argument")
	}
	_, err := oh.file.WriteAt(data, int64(off))
	return err
}

func (c *conn) fstat(id uint32, oh *openHandle) {
	if oh == nil {
		c.sendStatus(id, errBadHandle)
		return
	}
	if oh.file == nil {
		fi, err := c.s.stat(oh.vpath, true)
		c.sendAttrs(id, fi, err)
		return
	}
	if err := c.s.allow(c.s.ctx); err != nil {
		c.sendStatus(id, err)
		return
	}
	fi, err := oh.file.f.Stat()
	if err != nil {
		err = c.s.failPath("fstat", oh.file.vpath, err)
	}
	c.sendAttrs(id, fi, err)
}

func (c *conn) fsync(oh *openHandle) error {
	switch {
	case oh == nil:
		return errBadHandle
	case oh.file == nil:
		return errIsDir
	}
	if err := c.s.allow(c.s.ctx); err != nil {
		return err
	}
	if err := oh.file.f.Sync(); err != nil {
		return c.s.failPath("fsync", oh.file.vpath, err)
	}
	return nil
}

// readdir answers with the next entries that fit in one packet.
func (c *conn) readdir(id uint32, oh *openHandle) {
	switch {
	case oh == nil:
		c.sendStatus(id, errBadHandle)
		return
	case oh.dir == nil:
		c.sendStatus(id, errNotDir)
		return
	}
	if err := c.s.allow(c.s.ctx); err != nil {
		c.sendStatus(id, err)
		return
	}
	if len(oh.rest) == 0 && !oh.eof {
		if cap(oh.rest) == 0 {
			oh.rest = make([]os.FileInfo, 0, readdirBatch)
		}
		n, err := oh.dir.ListAt(oh.rest[:readdirBatch], oh.off)
		oh.off += int64(n)
		oh.rest = oh.rest[:n]
		switch {
		case err == io.EOF:
			oh.eof = true
		case err != nil:
			c.sendStatus(id, err)
			return
		}
	}
	if len(oh.rest) == 0 {
		c.sendStatus(id, io.EOF)
		return
	}
	now := c.s.cfg.Now()
	b := getBuffer(readdirSize)
	b.b = startPacket(b.b, fxpName, id)
	countAt := len(b.b)
	b.b = append(b.b, 0, 0, 0, 0)
	n := 0
	for _, fi := range oh.rest {
		if n > 0 && len(b.b)+entrySize(fi) > readdirSize {
			break
		}
		b.b = appendString(b.b, fi.Name())
		b.b = appendLongname(b.b, fi, now)
		b.b = appendAttrs(b.b, fi)
		n++
	}
	binary.BigEndian.PutUint32(b.b[countAt:], uint32(n))
	clear(oh.rest[:n])
	oh.rest = oh.rest[n:]
	if len(oh.rest) == 0 {
		oh.rest = oh.rest[:0:cap(oh.rest)]
	}
	c.send(b)
}

func (c *conn) sendRealPath(id uint32, vpath string, err error) {
	if err != nil {
		c.sendStatus(id, err)
		return
	}
	b := getBuffer(2*len(vpath) + 64)
	b.b = startPacket(b.b, fxpName, id)
	b.b = binary.BigEndian.AppendUint32(b.b, 1)
	b.b = appendString(appendString(b.b, vpath), vpath)
	b.b = binary.BigEndian.AppendUint32(b.b, 0) // no attributes
	c.send(b)
}

func (c *conn) sendAttrs(id uint32, fi os.FileInfo, err error) {
	if err != nil {
		c.sendStatus(id, err)
		return
	}
	b := getBuffer(64)
	b.b = appendAttrs(startPacket(b.b, fxpAttrs, id), fi)
	c.send(b)
}

// Statuses the server itself answers with.
var (
	errBadHandle      = status(fxFailure, "invalid handle")
	errBadMessage     = status(fxBadMessage, "bad message")
	errUnsupported    = status(fxOpUnsupported, "operation unsupported")
	errTooManyHandles = status(fxFailure, "too many open handles")
)

// sendStatus answers with err's status: OK for nil, EOF for io.EOF.
func (c *conn) sendStatus(id uint32, err error) {
	code, msg := uint32(fxOK), "ok"
	var se *statusError
	switch {
	case err == nil:
	case err == io.EOF:
		code, msg = fxEOF, "end of file"
	case errors.As(err, &se):
		code, msg = se.code, se.msg
	default:
		code, msg = fxFailure, errInternal.Error()
	}
	b := getBuffer(4 + 1 + 4 + 4 + 4 + len(msg) + 4)
	b.b = binary.BigEndian.AppendUint32(startPacket(b.b, fxpStatus, id), code)
	b.b = appendString(appendString(b.b, msg), "")
	c.send(b)
}

// send queues a reply, waiting while maxQueued are unsent, and starts the
// writer if it is not running. After a write failed, replies are dropped.
func (c *conn) send(b *buffer) {
	finishPacket(b.b)
	c.mu.Lock()
	if c.n == 0 && !c.writing && c.werr == nil && len(b.b) <= inlineReply {
		// Nothing is being sent: a small reply goes out from here,
		// which saves starting the writer for every status of an upload.
		// Only the reader starts the writer, so none can start meanwhile.
		c.mu.Unlock()
		_, err := c.ch.Write(b.b)
		b.put()
		if err != nil {
			c.mu.Lock()
			c.werr = err
			c.writeErr.Store(true)
			c.mu.Unlock()
		}
		return
	}
	for c.unsent >= maxQueued && c.werr == nil {
		c.cond.Wait()
	}
	if c.werr != nil {
		c.mu.Unlock()
		b.put()
		return
	}
	c.queue[(c.head+c.n)%maxQueued] = b
	c.n++
	c.unsent++
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
	c.mu.Unlock()
}

// writeLoop sends the queued replies, one Write each, and returns when the
// queue is empty.
func (c *conn) writeLoop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n > 0 {
		b := c.queue[c.head]
		c.queue[c.head] = nil
		c.head = (c.head + 1) % maxQueued
		c.n--
		c.mu.Unlock()
		_, err := c.ch.Write(b.b)
		b.put()
		c.mu.Lock()
		c.unsent--
		if err != nil {
			c.werr = err
			c.writeErr.Store(true)
			for ; c.n > 0; c.n-- {
				c.queue[c.head].put()
				c.queue[c.head] = nil
				c.head = (c.head + 1) % maxQueued
				c.unsent--
			}
		}
		c.cond.Broadcast()
	}
	c.writing = false
	c.cond.Broadcast()
}

// flush waits until every queued reply has been written.
func (c *conn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.unsent > 0 && c.werr == nil {
		c.cond.Wait()
	}
	return c.werr
}

func (c *conn) writerError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr
}

// stopWriter waits for the writer to return; the channel must be closed
// first, so that a write blocked on a client that stopped reading fails.
func (c *conn) stopWriter() {
	c.mu.Lock()
	for c.writing {
		c.cond.Wait()
	}
	c.mu.Unlock()
}

// closeHandles closes what the client left open when the channel ended:
// uploads still open are incomplete and discarded.
func (c *conn) closeHandles(cause error) {
	if cause == nil {
		cause = io.ErrUnexpectedEOF
	}
	for name, oh := range c.handles {
		if oh.file != nil {
			oh.file.TransferError(cause)
		}
		oh.close()
		delete(c.handles, name)
	}
}
