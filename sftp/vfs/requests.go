package vfs

// The requests of SFTP version 3: a table of handlers by packet type, one
// of extensions by name, and the handlers. A handler decodes the fields
// after the request ID, answers "bad message" if they do not decode (before
// doing anything), carries the request out, mostly through the file tree's
// operations (handlers.go), and queues exactly one reply.

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
)

// A requestHandler carries out one request; d holds the packet's fields
// after the request ID.
type requestHandler func(c *conn, id uint32, d decoder)

// requests holds the handler of each packet type the server serves; other
// types are answered "operation unsupported". INIT is the handshake's.
var requests = [256]requestHandler{
	fxpOpen:     (*conn).serveOpen,
	fxpClose:    (*conn).serveClose,
	fxpRead:     (*conn).serveRead,
	fxpWrite:    (*conn).serveWrite,
	fxpLstat:    (*conn).serveLstat,
	fxpFstat:    (*conn).serveFstat,
	fxpSetstat:  (*conn).serveSetstat,
	fxpFsetstat: (*conn).serveFsetstat,
	fxpOpendir:  (*conn).serveOpendir,
	fxpReaddir:  (*conn).serveReaddir,
	fxpRemove:   (*conn).serveRemove,
	fxpMkdir:    (*conn).serveMkdir,
	fxpRmdir:    (*conn).serveRmdir,
	fxpRealpath: (*conn).serveRealpath,
	fxpStat:     (*conn).serveStat,
	fxpRename:   (*conn).serveRename,
	fxpReadlink: (*conn).serveLink,
	fxpSymlink:  (*conn).serveLink,
	fxpExtended: (*conn).serveExtended,
}

// An extension is an SSH_FXP_EXTENDED request the server serves.
type extension struct {
	name    string
	version string // announced in the version reply; "" for none
	serve   requestHandler
}

// extensions are in the order the version reply announces them.
var extensions = [...]extension{
	{extPosixRename, "1", (*conn).servePosixRename},
	{extStatVFS, "2", (*conn).serveStatVFS},
	{extFsync, "1", (*conn).serveFsync},
	{extLimits, "1", (*conn).serveLimits},
	{extFstatVFS, "2", (*conn).serveFstatVFS},
	{extLsetstat, "1", (*conn).serveLsetstat},
	{extExpandPath, "1", (*conn).serveExpandPath},
	{extHomeDirectory, "1", (*conn).serveHomeDirectory},
	{extCopyData, "1", (*conn).serveCopyData},
	{extUsersGroupsByID, "1", (*conn).serveUsersGroupsByID},
	{extCheckFileName, "1", (*conn).serveCheckFileName},
	{extCheckFileHandle, "1", (*conn).serveCheckFileHandle},
	{extCheckFile, "", (*conn).serveCheckFileHandle},
	{extHardlink, "", (*conn).serveLink},
}

// dispatch carries out one request and queues its reply. It returns an
// error only when the channel must end.
func (c *conn) dispatch(p []byte) error {
	typ := p[0]
	d := decoder{b: p[1:]}
	id := d.u32()
	switch {
	case d.bad:
		return fmt.Errorf("%w: packet of type %d without a request ID", errProtocol, typ)
	case typ == fxpInit:
		return fmt.Errorf("%w: second INIT", errProtocol)
	}
	c.op, c.code, c.replyErr = int(typ), fxOK, nil
	if serve := requests[typ]; serve != nil {
		serve(c, id, d)
	} else {
		c.sendStatus(id, errUnsupported)
	}
	c.s.metrics.request(c.op, c.code, c.replyErr)
	return nil
}

// malformed answers "bad message" if the request's fields did not decode,
// and reports whether they did not.
func (c *conn) malformed(id uint32, d *decoder) bool {
	if d.bad {
		c.sendStatus(id, errBadMessage)
	}
	return d.bad
}

// serveExtended finds the extension by its name, the first field.
func (c *conn) serveExtended(id uint32, d decoder) {
	name := d.bytes()
	if c.malformed(id, &d) {
		return
	}
	for i := range extensions {
		if ext := &extensions[i]; ext.name == string(name) {
			c.op = opExtensions + i
			ext.serve(c, id, d)
			return
		}
	}
	c.op = opUnknownExt
	c.sendStatus(id, errUnsupported)
}

// openHandle is what a handle string names: a file or a directory listing.
type openHandle struct {
	file *handle

	dir   lister
	vpath string // the directory's path, for fstatvfs
	off   int64  // entries taken from dir so far
	rest  []os.FileInfo
	eof   bool
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

// handle finds an open handle; nil for one the channel does not hold.
func (c *conn) handle(name []byte) *openHandle {
	return c.handles[string(name)]
}

// lookup finds the open handle a handle string names, a directory listing
// if dir, else a file.
func (c *conn) lookup(name []byte, dir bool) (*openHandle, error) {
	oh := c.handle(name)
	switch {
	case oh == nil:
		return nil, errBadHandle
	case dir && oh.dir == nil:
		return nil, errBadHandle // not a directory handle: FAILURE, as OpenSSH
	case !dir && oh.file == nil:
		return nil, errIsDir
	}
	return oh, nil
}

func (c *conn) serveOpen(id uint32, d decoder) {
	p, pflags, _ := d.str(), d.u32(), d.attrs()
	if c.malformed(id, &d) {
		return
	}
	if err := c.takeHandle(); err != nil {
		c.sendStatus(id, err)
		return
	}
	var h *handle
	var err error
	if pflags&(fxfWrite|fxfAppend|fxfCreat|fxfTrunc) != 0 {
		h, err = c.s.openWrite(p, pflags)
		c.s.recordDenied(OpUpload, p, err)
	} else {
		h, err = c.s.openRead(p)
		c.s.recordDenied(OpDownload, p, err)
	}
	if err != nil {
		c.s.handles.Release()
		c.sendStatus(id, err)
		return
	}
	c.s.trackFile(h)
	c.sendHandle(id, &openHandle{file: h})
}

func (c *conn) serveOpendir(id uint32, d decoder) {
	p := d.str()
	if c.malformed(id, &d) {
		return
	}
	if err := c.takeHandle(); err != nil {
		c.sendStatus(id, err)
		return
	}
	l, vpath, err := c.s.list(p)
	if err != nil {
		c.s.handles.Release()
		c.sendStatus(id, err)
		return
	}
	c.sendHandle(id, &openHandle{dir: l, vpath: vpath})
}

func (c *conn) serveClose(id uint32, d decoder) {
	name := d.bytes()
	if c.malformed(id, &d) {
		return
	}
	oh := c.handle(name)
	if oh == nil {
		c.sendStatus(id, errNoHandle)
		return
	}
	delete(c.handles, string(name))
	err := oh.close()
	c.s.handles.Release()
	c.sendStatus(id, err)
}

// takeHandle counts a handle about to be opened against the channel's
// 1,024 and the connection's, user's, account's and process's caps
// (Config.Handles). The caller releases it if the open fails, and
// serveClose or closeHandles once it is closed.
func (c *conn) takeHandle() error {
	if len(c.handles) >= maxHandles {
		c.s.metrics.refused(resourceOpenFiles, "channel")
		return errTooManyHandles
	}
	if err := c.s.handles.Acquire(); err != nil {
		if le, ok := err.(*LimitError); ok {
			c.s.metrics.refused(resourceOpenFiles, le.Level)
		}
		return status(fxFailure, err.Error())
	}
	return nil
}

// serveRead answers with up to maxTxPacket bytes, read straight into the
// reply.
func (c *conn) serveRead(id uint32, d decoder) {
	name, off, n := d.bytes(), d.u64(), d.u32()
	if c.malformed(id, &d) {
		return
	}
	oh, err := c.lookup(name, false)
	switch {
	case err != nil:
		c.sendStatus(id, err)
		return
	case off > math.MaxInt64:
		c.sendStatus(id, errInvalid) // lseek's EINVAL, as OpenSSH
		return
	}
	n = min(n, maxTxPacket)
	const head = 4 + 1 + 4 + 4 // length, type, ID, data length
	b := getBuffer(head + int(n))
	b.b = startPacket(b.b, fxpData, id)
	b.b = b.b[:head+int(n)]
	got, err := oh.file.ReadAt(b.b[head:], int64(off))
	// A zero-length read, allowed, answers empty DATA as OpenSSH does. A
	// read that failed part way answers the failure, not the bytes before
	// it: clients take a short DATA reply for the end of the file (pkg/sftp
	// and rclone, which then stop there without an error), so a download of
	// a file changed by someone else meanwhile would come out cut short.
	if (got == 0 && (n != 0 || err != nil)) || (err != nil && err != io.EOF) {
		b.put()
		if err == nil {
			err = io.EOF
		}
		c.sendStatus(id, err)
		return
	}
	// A short read, at the end of the file, is a reply too.
	b.b = b.b[:head+got]
	binary.BigEndian.PutUint32(b.b[head-4:], uint32(got))
	c.send(b)
}

func (c *conn) serveWrite(id uint32, d decoder) {
	name, off, data := d.bytes(), d.u64(), d.bytes()
	if c.malformed(id, &d) {
		return
	}
	c.sendStatus(id, c.write(name, off, data))
}

func (c *conn) write(name []byte, off uint64, data []byte) error {
	oh, err := c.lookup(name, false)
	switch {
	case err != nil:
		return err
	case off > math.MaxInt64-uint64(len(data)):
		return errInvalid
	}
	_, err = oh.file.WriteAt(data, int64(off))
	return err
}

// stat serves STAT, which follows a symbolic link, and LSTAT.
func (c *conn) stat(id uint32, d decoder, follow bool) {
	p := d.str()
	if c.malformed(id, &d) {
		return
	}
	fi, err := c.s.stat(p, follow)
	c.sendAttrs(id, fi, err)
}

func (c *conn) serveStat(id uint32, d decoder)  { c.stat(id, d, true) }
func (c *conn) serveLstat(id uint32, d decoder) { c.stat(id, d, false) }

func (c *conn) serveFstat(id uint32, d decoder) {
	oh := c.handle(d.bytes())
	if c.malformed(id, &d) {
		return
	}
	switch {
	case oh == nil, oh.file == nil: // a directory handle has no descriptor to fstat
		c.sendStatus(id, errBadHandle)
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

func (c *conn) serveSetstat(id uint32, d decoder) {
	p, a := d.str(), d.attrs()
	if c.malformed(id, &d) {
		return
	}
	c.sendStatus(id, c.s.setstat(p, a))
}

// serveLsetstat is setstat, as there are no links for it to differ on,
// but for a size, which OpenSSH refuses for lsetstat ("bad message").
func (c *conn) serveLsetstat(id uint32, d decoder) {
	p, a := d.str(), d.attrs()
	if c.malformed(id, &d) {
		return
	}
	if a.flags&attrSize != 0 {
		c.sendStatus(id, errBadMessage)
		return
	}
	c.sendStatus(id, c.s.setstat(p, a))
}

func (c *conn) serveFsetstat(id uint32, d decoder) {
	oh, a := c.handle(d.bytes()), d.attrs()
	if c.malformed(id, &d) {
		return
	}
	switch {
	case oh == nil, oh.file == nil: // a directory handle has no descriptor, as in OpenSSH
		c.sendStatus(id, errBadHandle)
	default:
		c.sendStatus(id, oh.file.setattrs(a))
	}
}

// serveReaddir answers with the listing's next entries that fit in one
// packet.
func (c *conn) serveReaddir(id uint32, d decoder) {
	name := d.bytes()
	if c.malformed(id, &d) {
		return
	}
	oh, err := c.nextEntries(name)
	if err != nil {
		c.sendStatus(id, err)
		return
	}
	c.sendEntries(id, oh)
}

// nextEntries finds the listing a handle string names and readies its next
// entries: io.EOF at its end.
func (c *conn) nextEntries(name []byte) (*openHandle, error) {
	oh, err := c.lookup(name, true)
	if err != nil {
		return nil, err
	}
	if err := c.s.allow(c.s.ctx); err != nil {
		return nil, err
	}
	return oh, oh.next()
}

// A READDIR reply holds at most readdirBatch entries and readdirSize
// bytes: a few hundred entries (OpenSSH's server sends 100), in a buffer of
// the middle class.
const (
	readdirBatch = 128
	readdirSize  = 64 << 10
)

// next makes oh.rest hold entries to send, taking the listing's next batch
// once the last is sent; io.EOF when none are left.
func (oh *openHandle) next() error {
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
			return err
		}
	}
	if len(oh.rest) == 0 {
		return io.EOF
	}
	return nil
}

// sendEntries answers with a NAME reply of the entries taken from the
// listing that fit in readdirSize; at least one.
func (c *conn) sendEntries(id uint32, oh *openHandle) {
	now, owner := c.s.cfg.Now(), c.s.ownerName()
	b := getBuffer(readdirSize)
	b.b = startPacket(b.b, fxpName, id)
	countAt := len(b.b)
	b.b = append(b.b, 0, 0, 0, 0)
	n := 0
	for _, fi := range oh.rest {
		if n > 0 && len(b.b)+entrySize(fi)+2*len(owner) > readdirSize {
			break
		}
		b.b = appendString(b.b, fi.Name())
		b.b = appendLongname(b.b, fi, now, owner)
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

// remove serves REMOVE, which removes a file, and RMDIR.
func (c *conn) remove(id uint32, d decoder, dir bool) {
	p := d.str()
	if c.malformed(id, &d) {
		return
	}
	err := c.s.remove(p, dir)
	if dir {
		c.s.recordResult(OpRmdir, p, "", err)
	} else {
		c.s.recordResult(OpRemove, p, "", err)
	}
	c.sendStatus(id, err)
}

func (c *conn) serveRemove(id uint32, d decoder) { c.remove(id, d, false) }
func (c *conn) serveRmdir(id uint32, d decoder)  { c.remove(id, d, true) }

func (c *conn) serveMkdir(id uint32, d decoder) {
	p, _ := d.str(), d.attrs()
	if c.malformed(id, &d) {
		return
	}
	err := c.s.mkdir(p)
	c.s.recordResult(OpMkdir, p, "", err)
	c.sendStatus(id, err)
}

func (c *conn) serveRealpath(id uint32, d decoder) {
	p := d.str()
	if c.malformed(id, &d) {
		return
	}
	vpath, err := c.s.realPath(p)
	c.sendRealPath(id, vpath, err)
}

// rename serves RENAME, which never replaces an existing target, and
// posix-rename@openssh.com, which does.
func (c *conn) rename(id uint32, d decoder, replace bool) {
	from, to := d.str(), d.str()
	if c.malformed(id, &d) {
		return
	}
	err := c.s.rename(from, to, replace)
	c.s.recordResult(OpRename, from, to, err)
	c.sendStatus(id, err)
}

func (c *conn) serveRename(id uint32, d decoder)      { c.rename(id, d, false) }
func (c *conn) servePosixRename(id uint32, d decoder) { c.rename(id, d, true) }

// serveLink refuses READLINK, SYMLINK and hardlink@openssh.com whatever
// their fields.
func (c *conn) serveLink(id uint32, _ decoder) {
	c.sendStatus(id, c.s.refuseLink())
}

// serveLimits announces the packet and read/write sizes and the most
// handles a channel may hold open: its own 1,024 or the smallest of the
// caps that count its connection's handles (Config.Handles), if smaller.
func (c *conn) serveLimits(id uint32, _ decoder) {
	handles := maxHandles
	if n := c.s.handles.Cap(); n > 0 && n < handles {
		handles = n
	}
	c.sendUint64s(id, maxPacket, maxTxPacket, maxTxPacket, uint64(handles))
}

func (c *conn) serveStatVFS(id uint32, d decoder) {
	p := d.str()
	if c.malformed(id, &d) {
		return
	}
	st, err := c.s.statvfs(p)
	c.sendStatVFS(id, st, err)
}

func (c *conn) serveFsync(id uint32, d decoder) {
	name := d.bytes()
	if c.malformed(id, &d) {
		return
	}
	c.sendStatus(id, c.fsync(name))
}

func (c *conn) fsync(name []byte) error {
	oh := c.handle(name)
	if oh == nil || oh.file == nil {
		return errNoHandle
	}
	if err := c.s.allow(c.s.ctx); err != nil {
		return err
	}
	if err := oh.file.f.Sync(); err != nil {
		return c.s.failPath("fsync", oh.file.vpath, err)
	}
	return nil
}
