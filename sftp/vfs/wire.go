package vfs

// The wire shim between the SSH channel and pkg/sftp's request server. It
// fixes what costs pkg/sftp v1.13 most of its speed against OpenSSH clients,
// without changing the protocol otherwise (docs/BENCHMARKS.md has the
// measurements):
//
//   - It answers the limits@openssh.com extension (and announces it in the
//     version reply). OpenSSH's sftp client (≥ 8.6) asks for it and, when a
//     server answers, reads and writes in requests of up to 255 KiB; without
//     an answer it uses 32 KiB, so every file costs eight times as many
//     requests, replies, system calls and SSH packets.
//   - It bounds the requests pkg/sftp holds at once. pkg/sftp reads every
//     request the client pipelines (OpenSSH sends 64) and, with its
//     allocator, gives each a 256 KiB page until the reply is sent, so a
//     download with large requests would pin tens of MiB per channel.
//   - It writes each SFTP packet to the channel in one piece. pkg/sftp
//     writes a data reply as a 13-byte header and then the data, and
//     x/crypto/ssh sends every Write as its own SSH packet(s): one extra
//     encrypted packet and write system call per reply.

import (
	"encoding/binary"
	"io"
	"sync"
)

// SFTP packet types (draft-ietf-secsh-filexfer-02) used here.
const (
	fxpVersion       = 2 // SSH_FXP_VERSION
	fxpExtended      = 200
	fxpExtendedReply = 201
)

const limitsExtension = "limits@openssh.com"

// maxPeek bounds the extended requests read whole to see whether they are
// a limits request (which is 31 bytes long). Larger ones stream through.
const maxPeek = 1024

// sshChunk is the largest SSH channel data payload OpenSSH clients accept
// (their session channels' maximum packet size). A packet's header is sent
// together with the first sshChunk bytes of its data, so the copy this takes
// stays small; x/crypto splits the rest into full chunks.
const sshChunk = 32 * 1024

// wireLimits are the answers to limits@openssh.com: the largest packet the server
// accepts, the largest read it answers whole, the largest write it accepts,
// and how many handles a client may hold open (0: no set limit).
type wireLimits struct {
	MaxPacketLength uint64
	MaxReadLength   uint64
	MaxWriteLength  uint64
	MaxOpenHandles  uint64
}

// pkgSFTPLimits are the limits of pkg/sftp's request server when it is
// created with WithRSMaxTxPacket(maxRead): it refuses packets over 256 KiB
// (the length field excluded), so a write request's data must leave room
// for the request's own fields; 1 KiB is what OpenSSH's server keeps free.
func pkgSFTPLimits(maxRead uint32) wireLimits {
	const maxMsg = 256 * 1024
	return wireLimits{
		MaxPacketLength: maxMsg,
		MaxReadLength:   uint64(maxRead),
		MaxWriteLength:  maxMsg - 1024,
	}
}

// defaultMaxInFlight keeps 4 MiB of 255 KiB reads in flight per channel:
// twice the SSH channel window x/crypto gives a client, so a download never
// waits on it, while the pages pkg/sftp holds stay under 10 MiB.
const defaultMaxInFlight = 16

// wireConfig tunes a wireChannel.
type wireConfig struct {
	Limits wireLimits
	// MaxInFlight is how many requests the server may hold unanswered;
	// the next one stays in the channel until a reply goes out. Zero
	// means defaultMaxInFlight.
	MaxInFlight int
}

// wireChannel wraps the channel an SFTP server reads requests from and writes
// replies to. Read must be called by one goroutine at a time, as an SFTP
// server's receive loop does; Write may be called from several, each
// writing whole packets (in one or more calls) under the server's own lock,
// as pkg/sftp does.
type wireChannel struct {
	rwc   io.ReadWriteCloser
	reply [4 + 1 + 4 + 32]byte // limits reply; the request ID goes at 5:9

	// slots holds a token per request handed to the server and not yet
	// answered; done is closed by Close to release a Read waiting for one.
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// Read side.
	pending    []byte // bytes to hand over before reading rwc again
	pendingErr error  // returned once pending is drained
	left       int    // bytes of the current client packet still in rwc
	peek       []byte

	// Write side, guarded by mu.
	mu        sync.Mutex
	boundary  *sync.Cond // signalled when no packet is half written
	wleft     int        // bytes of the current server packet still to come
	stash     []byte     // a header held back to go out with its data
	versioned bool       // the version reply has gone out
}

// newWireChannel wraps rwc.
func newWireChannel(rwc io.ReadWriteCloser, cfg wireConfig) *wireChannel {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	limits := cfg.Limits
	c := &wireChannel{
		rwc:   rwc,
		slots: make(chan struct{}, cfg.MaxInFlight),
		done:  make(chan struct{}),
		stash: make([]byte, 0, 64),
		peek:  make([]byte, 0, 5+maxPeek),
	}
	c.boundary = sync.NewCond(&c.mu)
	binary.BigEndian.PutUint32(c.reply[0:], uint32(len(c.reply)-4))
	c.reply[4] = fxpExtendedReply
	binary.BigEndian.PutUint64(c.reply[9:], limits.MaxPacketLength)
	binary.BigEndian.PutUint64(c.reply[17:], limits.MaxReadLength)
	binary.BigEndian.PutUint64(c.reply[25:], limits.MaxWriteLength)
	binary.BigEndian.PutUint64(c.reply[33:], limits.MaxOpenHandles)
	return c
}

// Read passes the client's packets through unchanged, except limits
// requests, which it answers itself.
func (c *wireChannel) Read(p []byte) (int, error) {
	for {
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		if c.pendingErr != nil {
			return 0, c.pendingErr
		}
		if c.left > 0 {
			// The body of a packet: straight into the caller's buffer.
			if len(p) > c.left {
				p = p[:c.left]
			}
			n, err := c.rwc.Read(p)
			c.left -= n
			return n, err
		}
		c.nextPacket()
	}
}

// nextPacket reads the length and type of the client's next packet and
// either queues them for the reader, or, for a limits request, answers it.
func (c *wireChannel) nextPacket() {
	// Every request gets exactly one reply (SFTP has no unanswered
	// requests), so a slot taken here comes back with the reply.
	select {
	case c.slots <- struct{}{}:
	case <-c.done:
		c.pendingErr = io.ErrClosedPipe
		return
	}
	var h [5]byte
	n, err := io.ReadFull(c.rwc, h[:])
	if err != nil {
		// Hand over what came, then the error, as without the wrapper.
		c.pending, c.pendingErr = append(c.peek[:0], h[:n]...), err
		if err == io.ErrUnexpectedEOF && n == 0 {
			c.pendingErr = io.EOF
		}
		return
	}
	length := int(binary.BigEndian.Uint32(h[:4]))
	if h[4] != fxpExtended || length < 1 || length > maxPeek {
		c.pending = append(c.peek[:0], h[:]...)
		c.left = max(length-1, 0)
		return
	}
	pkt := append(c.peek[:0], h[:]...)[:4+length]
	if n, err := io.ReadFull(c.rwc, pkt[5:]); err != nil {
		c.pending, c.pendingErr = pkt[:5+n], err
		return
	}
	id, name, ok := extendedRequest(pkt[5:])
	if !ok || name != limitsExtension {
		c.pending = pkt
		return
	}
	c.release() // answered here, never seen by the server
	if err := c.writeLimits(id); err != nil {
		c.pendingErr = err
	}
}

// release gives back the slot of an answered request. A reply without a
// request (the version reply to INIT comes after its slot, which is fine;
// a misbehaving server sending more) must not block.
func (c *wireChannel) release() {
	select {
	case <-c.slots:
	default:
	}
}

// extendedRequest decodes the ID and name of an SSH_FXP_EXTENDED body.
func extendedRequest(b []byte) (id uint32, name string, ok bool) {
	if len(b) < 8 {
		return 0, "", false
	}
	id = binary.BigEndian.Uint32(b)
	n := binary.BigEndian.Uint32(b[4:])
	if uint64(n) > uint64(len(b)-8) {
		return 0, "", false
	}
	return id, string(b[8 : 8+n]), true
}

// writeLimits sends the limits reply between two of the server's packets.
func (c *wireChannel) writeLimits(id uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.wleft > 0 || len(c.stash) > 0 {
		c.boundary.Wait()
	}
	reply := c.reply
	binary.BigEndian.PutUint32(reply[5:], id)
	_, err := c.rwc.Write(reply[:])
	return err
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, sshChunk); return &b }}

// Write sends the server's packets, each header together with the start
// of its data, and announces limits@openssh.com in the version reply.
func (c *wireChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.stash) > 0 {
		return c.writeStashed(p)
	}
	if c.wleft > 0 {
		return c.writeThrough(p)
	}
	if len(p) < 5 {
		// Not a packet start this wrapper understands: pass it on.
		return c.rwc.Write(p)
	}
	total := 4 + int(binary.BigEndian.Uint32(p))
	c.release()
	switch {
	case p[4] == fxpVersion && !c.versioned && len(p) == total:
		c.versioned = true
		if _, err := c.rwc.Write(withExtension(p, limitsExtension, "1")); err != nil {
			return 0, err
		}
		return len(p), nil
	case len(p) < total && len(p) <= cap(c.stash):
		c.stash = append(c.stash, p...)
		c.wleft = total - len(p)
		return len(p), nil
	}
	c.wleft = total
	return c.writeThrough(p)
}

func (c *wireChannel) writeThrough(p []byte) (int, error) {
	n, err := c.rwc.Write(p)
	c.wleft = max(c.wleft-n, 0)
	if c.wleft == 0 {
		c.boundary.Broadcast()
	}
	return n, err
}

// writeStashed sends the held-back header with the first chunk of p, then
// the rest of p.
func (c *wireChannel) writeStashed(p []byte) (int, error) {
	head := min(len(p), sshChunk-len(c.stash))
	bp := chunkPool.Get().(*[]byte)
	buf := append(append((*bp)[:0], c.stash...), p[:head]...)
	_, err := c.rwc.Write(buf)
	*bp = buf[:0]
	chunkPool.Put(bp)
	c.stash = c.stash[:0]
	if err != nil {
		c.wleft = 0
		c.boundary.Broadcast()
		return 0, err
	}
	c.wleft = max(c.wleft-head, 0)
	if head == len(p) {
		if c.wleft == 0 {
			c.boundary.Broadcast()
		}
		return len(p), nil
	}
	n, err := c.writeThrough(p[head:])
	return head + n, err
}

// withExtension returns a copy of a version packet with one more
// extension pair.
func withExtension(pkt []byte, name, data string) []byte {
	out := make([]byte, 0, len(pkt)+8+len(name)+len(data))
	out = append(out, pkt...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(name)))
	out = append(out, name...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	out = append(out, data...)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// Close closes the channel and releases a Read waiting for a slot.
func (c *wireChannel) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return c.rwc.Close()
}
