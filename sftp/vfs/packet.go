package vfs

// Encoding and decoding of SFTP version 3 packets
// (draft-ietf-secsh-filexfer-02, with OpenSSH's extensions): a packet is a
// uint32 length, a type byte and the type's fields; integers are big-endian,
// strings a uint32 length and the bytes.

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Packet types.
const (
	fxpInit          = 1
	fxpVersion       = 2
	fxpOpen          = 3
	fxpClose         = 4
	fxpRead          = 5
	fxpWrite         = 6
	fxpLstat         = 7
	fxpFstat         = 8
	fxpSetstat       = 9
	fxpFsetstat      = 10
	fxpOpendir       = 11
	fxpReaddir       = 12
	fxpRemove        = 13
	fxpMkdir         = 14
	fxpRmdir         = 15
	fxpRealpath      = 16
	fxpStat          = 17
	fxpRename        = 18
	fxpReadlink      = 19
	fxpSymlink       = 20
	fxpStatus        = 101
	fxpHandle        = 102
	fxpData          = 103
	fxpName          = 104
	fxpAttrs         = 105
	fxpExtended      = 200
	fxpExtendedReply = 201
)

// Status codes.
const (
	fxOK               = 0
	fxEOF              = 1
	fxNoSuchFile       = 2
	fxPermissionDenied = 3
	fxFailure          = 4
	fxBadMessage       = 5
	fxOpUnsupported    = 8
)

// Flags of SSH_FXP_OPEN.
const (
	fxfRead   = 0x01
	fxfWrite  = 0x02
	fxfAppend = 0x04
	fxfCreat  = 0x08
	fxfTrunc  = 0x10
	fxfExcl   = 0x20
)

// Attribute flags.
const (
	attrSize        = 0x01
	attrUIDGID      = 0x02
	attrPermissions = 0x04
	attrACModTime   = 0x08
	attrExtended    = 0x80000000
)

// The extensions the server implements, announced in its version reply.
const (
	extLimits      = "limits@openssh.com"
	extPosixRename = "posix-rename@openssh.com"
	extStatVFS     = "statvfs@openssh.com"
	extFsync       = "fsync@openssh.com"
	extHardlink    = "hardlink@openssh.com" // refused like symlinks, not announced
)

// Sizes. maxPacket is the largest packet (its length field) accepted or
// sent, as in OpenSSH; maxTxPacket (session.go) is the largest read
// answered and write accepted, leaving room for the fields around the data.
const (
	maxPacket = 256 * 1024
	// maxHandles bounds the handles one channel holds open: each is a
	// file descriptor.
	maxHandles = 1024
)

// buffer is a pooled byte slice. The pointer is what goes in the pool, so
// taking and giving back a buffer allocates nothing.
type buffer struct{ b []byte }

// Buffer classes: small packets (most requests and replies), medium ones
// (32 KiB transfers of most clients, directory listings) and the largest.
var bufferSizes = [...]int{4 << 10, 64 << 10, maxPacket + 4}

var bufferPools [len(bufferSizes)]sync.Pool

// getBuffer returns an empty buffer with room for at least n bytes; n must
// be at most maxPacket+4.
func getBuffer(n int) *buffer {
	for i, size := range bufferSizes {
		if n <= size {
			if b, ok := bufferPools[i].Get().(*buffer); ok {
				b.b = b.b[:0]
				return b
			}
			return &buffer{b: make([]byte, 0, size)}
		}
	}
	panic("vfs: buffer of " + strconv.Itoa(n) + " bytes requested")
}

// put gives a buffer back to the pool of its class. Buffers that grew past
// their class (by append) are kept in the class they now fill.
func (b *buffer) put() {
	for i := len(bufferSizes) - 1; i >= 0; i-- {
		if cap(b.b) >= bufferSizes[i] {
			if cap(b.b) <= 2*bufferSizes[i] {
				bufferPools[i].Put(b)
			}
			return
		}
	}
}

// decoder reads a packet's fields. A field past the end sets bad and
// reads as zero, so a handler decodes everything, then checks bad once.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.bad, d.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.bad, d.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// bytes returns a string field without copying: valid until the packet's
// buffer is given back.
func (d *decoder) bytes() []byte {
	n := d.u32()
	if uint64(n) > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes()) }

// attrs are the attributes a client sends with SETSTAT, FSETSTAT, OPEN
// and MKDIR.
type attrs struct {
	flags        uint32
	size         uint64
	atime, mtime uint32
}

// attrs decodes an attribute block; the fields the server ignores
// (ownership, permissions, extensions) are skipped.
func (d *decoder) attrs() attrs {
	a := attrs{flags: d.u32()}
	if a.flags&attrSize != 0 {
		a.size = d.u64()
	}
	if a.flags&attrUIDGID != 0 {
		d.u32()
		d.u32()
	}
	if a.flags&attrPermissions != 0 {
		d.u32()
	}
	if a.flags&attrACModTime != 0 {
		a.atime, a.mtime = d.u32(), d.u32()
	}
	if a.flags&attrExtended != 0 {
		for n := d.u32(); n > 0 && !d.bad; n-- {
			d.bytes()
			d.bytes()
		}
	}
	return a
}

// Encoding appends to a buffer; startPacket leaves room for the length,
// which finishPacket fills in.

func startPacket(b []byte, typ byte, id uint32) []byte {
	b = append(b, 0, 0, 0, 0, typ)
	return binary.BigEndian.AppendUint32(b, id)
}

func finishPacket(b []byte) []byte {
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// POSIX file type bits, as SFTP carries them in permissions.
const (
	sIFIFO  = 0o010000
	sIFCHR  = 0o020000
	sIFDIR  = 0o040000
	sIFBLK  = 0o060000
	sIFREG  = 0o100000
	sIFLNK  = 0o120000
	sIFSOCK = 0o140000
)

// posixMode converts a Go file mode to the POSIX mode clients expect.
func posixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	switch {
	case m.IsDir():
		v |= sIFDIR
	case m&fs.ModeSymlink != 0:
		v |= sIFLNK
	case m&fs.ModeNamedPipe != 0:
		v |= sIFIFO
	case m&fs.ModeSocket != 0:
		v |= sIFSOCK
	case m&fs.ModeCharDevice != 0:
		v |= sIFCHR
	case m&fs.ModeDevice != 0:
		v |= sIFBLK
	default:
		v |= sIFREG
	}
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// owner returns a file's numeric owner and group, zero for entries that
// exist only in the tree.
func owner(fi fs.FileInfo) (uid, gid uint32) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid
	}
	return 0, 0
}

// sftpTime is a time as SFTP v3 carries it: seconds in a uint32.
func sftpTime(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), math.MaxUint32))
}

// appendAttrs encodes a file's attributes.
func appendAttrs(b []byte, fi fs.FileInfo) []byte {
	uid, gid := owner(fi)
	mtime := sftpTime(fi.ModTime())
	atime := mtime
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		atime = sftpTime(accessTime(st))
	}
	b = binary.BigEndian.AppendUint32(b, attrSize|attrUIDGID|attrPermissions|attrACModTime)
	b = binary.BigEndian.AppendUint64(b, uint64(max(fi.Size(), 0)))
	b = binary.BigEndian.AppendUint32(b, uid)
	b = binary.BigEndian.AppendUint32(b, gid)
	b = binary.BigEndian.AppendUint32(b, posixMode(fi.Mode()))
	b = binary.BigEndian.AppendUint32(b, atime)
	return binary.BigEndian.AppendUint32(b, mtime)
}

// appendLongname is the "ls -l" line of a NAME entry, which clients such
// as OpenSSH's show as is. It is laid out as OpenSSH's ls_file does: the
// mode as ls(1) writes it (strmode), the link count, owner and group (the
// session's login for both, see Config.Login), size, and the time of day
// for the last six months, else the year.
func appendLongname(b []byte, fi fs.FileInfo, now time.Time, owner string) []byte {
	nlink := uint64(1)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		nlink = uint64(st.Nlink)
	}
	// The time the attributes carry (sftpTime): a folder with no time of
	// its own (on S3) reads as 1970 in both, not year 1 in the line.
	mt := fi.ModTime()
	if sent := int64(sftpTime(mt)); sent != mt.Unix() {
		mt = time.Unix(sent, 0).In(mt.Location())
	}
	layout := "Jan _2  2006"
	if mt.After(now.Add(-sixMonths)) && !mt.After(now) {
		layout = "Jan _2 15:04"
	}
	line := fmt.Sprintf("%s %3d %-8s %-8s %8d %s %s", lsMode(fi.Mode()), nlink, owner, owner,
		max(fi.Size(), 0), mt.Format(layout), fi.Name())
	return appendString(b, line)
}

// sixMonths is ls's "recent": half of a 365-day year, as OpenSSH counts.
const sixMonths = 365 * 24 * time.Hour / 2

// lsMode is a mode as ls(1) and strmode(3) write it: the type, three
// triplets with s/S and t/T for setuid, setgid and sticky, and a space
// where ls would mark an ACL.
func lsMode(m fs.FileMode) string {
	var b [11]byte
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	default:
		b[0] = '-'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		} else {
			b[1+i] = '-'
		}
	}
	special := func(at int, set bool, on, off byte) {
		if !set {
			return
		}
		if b[at] == 'x' {
			b[at] = on
		} else {
			b[at] = off
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	b[10] = ' '
	return string(b[:])
}

// entrySize bounds the bytes a NAME entry for fi takes.
func entrySize(fi fs.FileInfo) int { return 2*len(fi.Name()) + 160 }
