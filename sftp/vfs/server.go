package vfs

// The SFTP server of one channel: SFTP version 3 as OpenSSH's sftp-server
// speaks it, with the extensions clients use (limits, posix-rename,
// statvfs, fsync, and those of extensions.go).
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
// to a few hundred KiB whatever the client pipelines. What each request
// does is its handler's, in requests.go.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// conn serves one channel.
type conn struct {
	s   *Session
	ch  io.ReadWriteCloser
	hdr [4]byte

	handles  map[string]*openHandle // made on first open
	lastID   uint64
	writeErr atomic.Bool // the writer failed: the channel is gone
	// dispatching is set while a request is carried out (Session.Busy).
	dispatching atomic.Bool
	// The request being carried out, for Metrics: its operation, and the
	// status and error its reply carries.
	op       int
	code     uint32
	replyErr error

	mu      sync.Mutex
	cond    sync.Cond // signalled when a reply is sent and when the writer stops
	queue   [maxQueued]*buffer
	head, n int  // queued replies
	unsent  int  // queued, or being written
	writing bool // the writer goroutine runs
	werr    error
}

// maxReply is the most memory one reply holds: the largest buffer class.
const maxReply = maxPacket + 4

// waitRoom is the back-pressure of the process's reply budget: before the
// reader reads the next request, it waits while the channel has replies
// unsent and the connection's share or the process budget has no room for
// one more of the largest reply. Meanwhile the client's requests stay
// unread (the SSH window then stops it sending more). A channel with
// nothing unsent always goes on, so every channel progresses; the writer
// wakes the reader after each reply it sends.
func (c *conn) waitRoom() {
	sh := c.s.replies
	if sh == nil {
		return
	}
	c.mu.Lock()
	for c.unsent > 0 && c.werr == nil && !sh.room(maxReply) {
		c.cond.Wait()
	}
	c.mu.Unlock()
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
		c.waitRoom()
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
		c.dispatching.Store(true)
		c.s.memo.Begin()
		err = c.dispatch(req.b)
		c.s.memo.End()
		c.dispatching.Store(false)
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
	b := getBuffer(1024)
	b.b = startPacket(b.b, fxpVersion, 3)
	for _, ext := range extensions {
		if ext.version != "" {
			b.b = appendString(appendString(b.b, ext.name), ext.version)
		}
	}
	c.send(b)
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
	errBadHandle      = status(fxFailure, msgFailure)
	errNoHandle       = status(fxNoSuchFile, msgNoSuchFile) // closing an unknown handle: EBADF, as OpenSSH
	errBadMessage     = status(fxBadMessage, msgBadMessage)
	errUnsupported    = status(fxOpUnsupported, msgUnsupported)
	errTooManyHandles = status(fxFailure, "too many open handles")
)

// sendStatus answers with err's status: OK for nil, EOF for io.EOF.
func (c *conn) sendStatus(id uint32, err error) {
	code, msg := uint32(fxOK), msgOK
	var se *statusError
	switch {
	case err == nil:
	case err == io.EOF:
		code, msg = fxEOF, msgEOF
	case errors.As(err, &se):
		code, msg = se.code, se.msg
	default:
		code, msg = fxFailure, errInternal.Error()
	}
	c.code, c.replyErr = code, err
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
	c.s.replies.add(int64(cap(b.b)))
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
		c.s.replies.add(-int64(cap(b.b)))
		b.put()
		c.mu.Lock()
		c.unsent--
		if err != nil {
			c.werr = err
			c.writeErr.Store(true)
			for ; c.n > 0; c.n-- {
				c.s.replies.add(-int64(cap(c.queue[c.head].b)))
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
		c.s.handles.Release()
		delete(c.handles, name)
	}
}
