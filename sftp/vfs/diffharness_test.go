package vfs_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// The harness of the differential suite (differential_test.go): it runs a
// case's script of raw requests against OpenSSH's sftp-server and against
// a Skiff session, each in a fresh copy of the same tree, and turns every
// reply into a normalised line so that the two can be compared.
//
// A script is steps separated by ";". A step is an operation and its
// arguments, separated by spaces ("quoted" Go strings for names with
// spaces or odd bytes):
//
//	open PATH FLAGS [ATTRS] @h   FLAGS: letters of r w a c t x, or "-" for none
//	close @h | read @h OFF LEN | write @h OFF DATA | fstat @h | fsetstat @h ATTRS
//	stat P | lstat P | setstat P ATTRS | mkdir P [ATTRS] | rmdir P | remove P
//	realpath P | rename A B | readlink P | symlink A B | opendir P @d | readdir @d
//	ext NAME ARGS...   ARGS: a string, @h (a handle), u32:N or u64:N
//	pkt TYPE ARGS...   any packet type, with ARGS as for ext
//	ls P       opendir, every readdir to EOF, close: the sorted entries
//	tree       the working directory as it is on disk (not a request)
//	chmod P MODE   changes a mode on disk (not a request), e.g. 02750
//	version    the reply to INIT
//
// Paths are relative to the session's start (OpenSSH's -d directory,
// Skiff's /My Files); "~" stands for that directory's absolute path, and
// replies show it as "~". ATTRS is "-" (none) or comma-separated
// size=N, mtime=N (atime too), perm=0NNN, uid=N:N. DATA "rep:N" is N bytes
// of a pattern. A step starting with "&" is pipelined: it is sent without
// waiting, and its reply read with the next plain step's, in order of ID.
//
// A step ending "=> REPLY" is one where Skiff differs on purpose: Skiff
// must answer exactly REPLY, OpenSSH something else, and the case names
// the row of the differences table of docs/SFTP-SERVER.md it relies on.

// diffLogin is the Skiff session's login, the owner its listings show.
const diffLogin = "k7m2-p9xd"

// sftpServerPath is OpenSSH's sftp-server as Debian installs it.
const sftpServerPath = "/usr/lib/openssh/sftp-server"

// fixtureTime is the modification time of every fixture entry.
const fixtureTime = 1_700_000_000

// writeFixture makes the tree every case starts from in dir.
func writeFixture(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"f": "0123456789", "empty": "", "d/a": "A", "d/b": "BB",
		"name with space": "s", "big": strings.Repeat("0123456789abcdef", 4096),
	}
	for name, content := range files {
		mustWrite(t, filepath.Join(dir, name), content)
	}
	if tr, top, ok := s3Path(dir); ok {
		s3Fixture(t, tr, top)
		return
	}
	for _, d := range []string{"e", "d/sub"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	// Modes and times last, deepest first, so that no later change moves
	// a directory's time.
	var all []string
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && p != dir {
			all = append(all, p)
		}
		return nil
	})
	slices.Reverse(all)
	for _, p := range append(all, dir) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o640)
		if fi.IsDir() {
			mode = 0o750
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		tm := time.Unix(fixtureTime, 0)
		if err := os.Chtimes(p, tm, tm); err != nil {
			t.Fatal(err)
		}
	}
}

// peer is one server a script runs against.
type peer struct {
	name   string
	r      *raw
	dir    string // the start directory on disk
	prefix string // the start directory's absolute path as the server shows it
	init   string // the normalised VERSION reply
	closed bool   // the server closed the channel
}

// What a request got instead of a reply.
var (
	errClosed  = errors.New("CLOSED")
	errNoReply = errors.New("NO REPLY")
)

// sentinel is the ID of the request sent behind a "pkt" step.
const sentinel = 0x7fffffff

// recv reads a reply: errClosed when the server closed the channel
// (OpenSSH's exits on a malformed request), errNoReply at the read
// deadline.
func (p *peer) recv() (byte, []byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(p.r.conn, l[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil, errNoReply
		}
		return 0, nil, errClosed
	}
	body := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(p.r.conn, body); err != nil {
		return 0, nil, errClosed
	}
	return body[0], body[1:], nil
}

// pipeConn is one end of a pair of OS pipes: unlike net.Pipe they buffer,
// so a client can send requests ahead of reading replies, and they tell
// EOF when the other end's process exits.
type pipeConn struct{ r, w *os.File }

func (c pipeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c pipeConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c pipeConn) Close() error {
	c.w.Close()
	return c.r.Close()
}
func (c pipeConn) SetDeadline(t time.Time) error {
	c.w.SetDeadline(t)
	return c.r.SetDeadline(t)
}
func (c pipeConn) SetReadDeadline(t time.Time) error { return c.r.SetReadDeadline(t) }

// pipes returns the two ends of a channel.
func pipes(t *testing.T) (client, server pipeConn) {
	t.Helper()
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	client, server = pipeConn{r: r2, w: w1}, pipeConn{r: r1, w: w2}
	t.Cleanup(func() { client.Close() })
	client.SetDeadline(time.Now().Add(time.Minute))
	return client, server
}

// startOpenSSH runs sftp-server over pipes, started in a fresh fixture.
// Files it creates get 0640 and directories 0750 (umask 027), the modes
// Skiff gives them.
func startOpenSSH(t *testing.T) *peer {
	t.Helper()
	dir := t.TempDir()
	writeFixture(t, dir)
	client, server := pipes(t)
	cmd := exec.Command(sftpServerPath, "-d", dir, "-u", "027")
	cmd.Stdin, cmd.Stdout = server.r, server.w
	cmd.Env = []string{"TZ=UTC", "LC_ALL=C"}
	err := cmd.Start()
	server.Close()
	if err != nil {
		t.Fatalf("start sftp-server: %v", err)
	}
	t.Cleanup(func() {
		client.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	p := &peer{name: "openssh", r: &raw{t: t, conn: client}, dir: dir, prefix: dir}
	p.handshake()
	return p
}

// startSkiff serves a Skiff session over pipes, with a fresh fixture in
// the user's home.
func startSkiff(t *testing.T) *peer {
	t.Helper()
	e := newEnv(t, func(c *vfs.Config) {
		c.Now = time.Now // ls's "recent" is now's
		c.Login = diffLogin
	})
	writeFixture(t, e.home())
	client, server := pipes(t)
	served := make(chan error, 1)
	go func() { served <- e.session.Serve(server) }()
	t.Cleanup(func() {
		client.Close()
		<-served
	})
	p := &peer{name: "skiff", r: &raw{t: t, conn: client}, dir: e.home(), prefix: "/My Files"}
	p.handshake()
	return p
}

func (p *peer) handshake() {
	p.r.send(packet(typeInit, u32(3)))
	typ, b := p.r.recv()
	if typ != typeVersion {
		p.r.t.Fatalf("%s: reply to INIT of type %d", p.name, typ)
	}
	var exts []string
	for rest := b[4:]; len(rest) > 0; {
		var name, data string
		name, rest = splitString(p.r.t, rest)
		data, rest = splitString(p.r.t, rest)
		exts = append(exts, name+"="+data)
	}
	slices.Sort(exts)
	p.init = fmt.Sprintf("VERSION %d %s", binary.BigEndian.Uint32(b), strings.Join(exts, " "))
}

// pktReply reads the answer to a "pkt" step, which OpenSSH's server may
// not answer at all. REALPATH requests with the sentinel ID go behind it,
// a new one every 200 ms (after a request it does not answer, OpenSSH's
// server leaves the next reply unsent until more input comes): a
// sentinel's reply first means no answer. Time only paces the sentinels;
// the order of the replies decides.
func (p *peer) pktReply() (byte, []byte, error) {
	c := p.r.conn
	defer c.SetReadDeadline(time.Now().Add(time.Minute))
	drain := func(n int) {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		for range n {
			if _, b, err := p.recv(); err != nil || binary.BigEndian.Uint32(b) != sentinel {
				p.r.t.Fatalf("%s: sentinel reply missing", p.name)
			}
		}
	}
	for sent := 1; ; sent++ {
		if sent > 100 {
			p.r.t.Fatalf("%s: no reply, not even to a sentinel", p.name)
		}
		if _, err := c.Write(packet(typeRealpath, u32(sentinel), str("."))); err != nil {
			return 0, nil, errClosed
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		typ, b, err := p.recv()
		switch {
		case err == errNoReply:
			continue
		case err != nil:
			return 0, nil, err
		case typ != typeVersion && binary.BigEndian.Uint32(b) == sentinel:
			drain(sent - 1)
			return 0, nil, errNoReply
		}
		drain(sent)
		return typ, b, nil
	}
}

// run carries out a script and returns the normalised reply of each step.
func (p *peer) run(script string) []string {
	t := p.r.t
	t.Helper()
	steps := parseScript(t, script)
	handles := map[string][]byte{}
	replies := make([]string, len(steps))
	var pending []int
	for i, st := range steps {
		id := uint32(i + 1)
		switch st.op {
		case "tree":
			replies[i] = treeState(t, p.dir)
			continue
		case "version":
			replies[i] = p.init
			continue
		case "chmod":
			replies[i] = "chmod on disk"
			if err := os.Chmod(filepath.Join(p.dir, st.args[0]), os.FileMode(num(t, st.args[1]))|modeBits(num(t, st.args[1]))); err != nil {
				t.Fatal(err)
			}
			continue
		case "ls":
			replies[i] = p.ls(id, p.path(st.args[0]))
			continue
		}
		if p.closed {
			replies[i] = errClosed.Error()
			continue
		}
		if _, err := p.r.conn.Write(p.request(st, id, handles)); err != nil {
			p.closed, replies[i] = true, errClosed.Error()
			continue
		}
		pending = append(pending, i)
		if st.pipelined {
			continue
		}
		for range pending {
			var typ byte
			var b []byte
			var err error
			if st.op == "pkt" {
				typ, b, err = p.pktReply()
			} else {
				typ, b, err = p.recv()
			}
			if err != nil {
				// No reply, or the channel closed: the requests not
				// answered yet show which.
				for _, k := range pending {
					if replies[k] == "" {
						replies[k] = err.Error()
					}
				}
				p.closed = err == errClosed
				break
			}
			j := int(binary.BigEndian.Uint32(b)) - 1
			if typ == typeVersion { // to a second INIT: VERSION has no request ID
				j = slices.IndexFunc(pending, func(k int) bool { return replies[k] == "" })
				j = pending[max(j, 0)]
				b = append(u32(uint32(j+1)), b...)
			}
			if j < 0 || j >= len(steps) || replies[j] != "" {
				t.Fatalf("%s: reply of type %d for an unexpected request %d", p.name, typ, j+1)
			}
			replies[j] = p.normalise(steps[j], typ, b[4:])
			if typ == typeHandle && steps[j].slot != "" {
				handles[steps[j].slot] = append([]byte(nil), b[8:]...)
			}
		}
		pending = pending[:0]
	}
	if len(pending) > 0 {
		t.Fatalf("script ends with pipelined requests")
	}
	return replies
}

// path maps a script path: "~" is the start directory.
func (p *peer) path(s string) string {
	if s == "~" || strings.HasPrefix(s, "~/") {
		return p.prefix + s[1:]
	}
	return s
}

// request builds a step's packet.
func (p *peer) request(st step, id uint32, handles map[string][]byte) []byte {
	t := p.r.t
	a := st.args
	h := func(s string) []byte {
		if !strings.HasPrefix(s, "@") {
			t.Fatalf("%s: %q is not a handle", st.op, s)
		}
		v, ok := handles[s[1:]]
		if !ok {
			v = []byte("no-such-handle")
		}
		return str(string(v))
	}
	ps := func(s string) []byte { return str(p.path(s)) }
	args := func(list []string) [][]byte {
		var out [][]byte
		for _, s := range list {
			switch {
			case strings.HasPrefix(s, "@"):
				out = append(out, h(s))
			case strings.HasPrefix(s, "u32:"):
				n, _ := strconv.ParseUint(s[4:], 0, 32)
				out = append(out, u32(uint32(n)))
			case strings.HasPrefix(s, "u64:"):
				n, _ := strconv.ParseUint(s[4:], 0, 64)
				out = append(out, u64(n))
			default:
				out = append(out, ps(s))
			}
		}
		return out
	}
	switch st.op {
	case "open":
		at := []byte(u32(0))
		if len(a) > 2 {
			at = attrBytes(t, a[2])
		}
		return packet(typeOpen, u32(id), ps(a[0]), u32(openFlags(t, a[1])), at)
	case "close":
		return packet(typeClose, u32(id), h(a[0]))
	case "read":
		return packet(typeRead, u32(id), h(a[0]), u64(num(t, a[1])), u32(uint32(num(t, a[2]))))
	case "write":
		return packet(typeWrite, u32(id), h(a[0]), u64(num(t, a[1])), str(data(a[2])))
	case "fstat":
		return packet(8, u32(id), h(a[0]))
	case "fsetstat":
		return packet(typeFsetstat, u32(id), h(a[0]), attrBytes(t, a[1]))
	case "stat":
		return packet(typeStat, u32(id), ps(a[0]))
	case "lstat":
		return packet(7, u32(id), ps(a[0]))
	case "setstat":
		return packet(9, u32(id), ps(a[0]), attrBytes(t, a[1]))
	case "mkdir":
		at := []byte(u32(0))
		if len(a) > 1 {
			at = attrBytes(t, a[1])
		}
		return packet(14, u32(id), ps(a[0]), at)
	case "rmdir":
		return packet(15, u32(id), ps(a[0]))
	case "remove":
		return packet(13, u32(id), ps(a[0]))
	case "realpath":
		return packet(typeRealpath, u32(id), ps(a[0]))
	case "rename":
		return packet(typeRenameReq, u32(id), ps(a[0]), ps(a[1]))
	case "readlink":
		return packet(19, u32(id), ps(a[0]))
	case "symlink":
		return packet(20, u32(id), ps(a[0]), ps(a[1]))
	case "opendir":
		return packet(11, u32(id), ps(a[0]))
	case "readdir":
		return packet(12, u32(id), h(a[0]))
	case "ext":
		return packet(typeExtended, append([][]byte{u32(id), str(a[0])}, args(a[1:])...)...)
	case "pkt":
		return packet(byte(num(t, a[0])), append([][]byte{u32(id)}, args(a[1:])...)...)
	}
	t.Fatalf("unknown operation %q", st.op)
	return nil
}

// ls lists a directory to its end, as a client does.
func (p *peer) ls(id uint32, dir string) string {
	r := p.r
	r.send(packet(11, u32(id), str(dir)))
	typ, b := r.recv()
	if typ != typeHandle {
		return p.normalise(step{}, typ, b[4:])
	}
	h := string(b[8:])
	var entries []string
	for {
		r.send(packet(12, u32(id), str(h)))
		typ, b := r.recv()
		if typ != typeName {
			if s := p.normalise(step{}, typ, b[4:]); s != "STATUS EOF End of file" {
				entries = append(entries, s)
			}
			break
		}
		entries = append(entries, nameEntries(r.t, b[4:], true)...)
	}
	r.send(packet(typeClose, u32(id), str(h)))
	r.status(id)
	slices.Sort(entries)
	return "NAME " + strings.Join(entries, " | ")
}

// longNames lists a directory and returns each entry's long name.
func (p *peer) longNames(dir string) map[string]string {
	r := p.r
	r.send(packet(11, u32(1), str(dir)))
	typ, b := r.recv()
	if typ != typeHandle {
		r.t.Fatalf("%s: opendir %s: reply of type %d", p.name, dir, typ)
	}
	h := string(b[8:])
	out := map[string]string{}
	for {
		r.send(packet(12, u32(2), str(h)))
		typ, b := r.recv()
		if typ != typeName {
			break
		}
		b = b[4:] // the request ID
		count := binary.BigEndian.Uint32(b)
		b = b[4:]
		for range count {
			var name, long string
			name, b = splitString(r.t, b)
			long, b = splitString(r.t, b)
			_, b = attrString(r.t, b)
			out[name] = long
		}
	}
	r.send(packet(typeClose, u32(3), str(h)))
	r.status(3)
	return out
}

// Status codes by name, as the normalised replies show them.
var codeNames = map[uint32]string{
	0: "OK", 1: "EOF", 2: "NO_SUCH_FILE", 3: "PERMISSION_DENIED", 4: "FAILURE",
	5: "BAD_MESSAGE", 6: "NO_CONNECTION", 7: "CONNECTION_LOST", 8: "OP_UNSUPPORTED",
}

// normalise turns a reply (its fields after the ID) into a line that means
// the same on both servers.
func (p *peer) normalise(st step, typ byte, b []byte) string {
	t := p.r.t
	switch typ {
	case typeStatus:
		msg, _ := splitString(t, b[4:])
		return fmt.Sprintf("STATUS %s %s", codeNames[binary.BigEndian.Uint32(b)], msg)
	case typeHandle:
		return "HANDLE"
	case typeData:
		d, _ := splitString(t, b)
		if len(d) > 64 {
			sum := sha256.Sum256([]byte(d))
			return fmt.Sprintf("DATA %d bytes %x", len(d), sum[:6])
		}
		return fmt.Sprintf("DATA %q", d)
	case typeAttrs:
		s, _ := attrString(t, b)
		return "ATTRS " + s
	case typeName:
		entries := nameEntries(t, b, st.op == "readdir")
		if st.op == "realpath" {
			// The path only: OpenSSH's long name and attributes of a
			// realpath reply are placeholders.
			name, _ := splitString(t, b[4:])
			if name == p.prefix || strings.HasPrefix(name, p.prefix+"/") {
				name = "~" + name[len(p.prefix):]
			}
			return "NAME " + name
		}
		for i, e := range entries {
			if strings.HasPrefix(e, p.prefix) {
				entries[i] = "~" + e[len(p.prefix):]
			}
		}
		if st.op == "readdir" {
			slices.Sort(entries)
		}
		return "NAME " + strings.Join(entries, " | ")
	case typeExtendedReply:
		return "EXTENDED " + extReply(st, b)
	case typeVersion:
		return fmt.Sprintf("VERSION %x", b)
	}
	return fmt.Sprintf("type %d %x", typ, b)
}

// extReply normalises an extension's reply: statvfs and limits hold
// numbers of the machine, not of the server.
func extReply(st step, b []byte) string {
	var name string
	if len(st.args) > 0 {
		name = st.args[0]
	}
	u := func(i int) uint64 {
		if len(b) < 8*(i+1) {
			return 0
		}
		return binary.BigEndian.Uint64(b[8*i:])
	}
	switch name {
	case "statvfs@openssh.com", "fstatvfs@openssh.com":
		return fmt.Sprintf("statvfs %d fields, blocks>0 %v, flag %d, namemax %d", len(b)/8, u(2) > 0, u(9), u(10))
	case "limits@openssh.com":
		// The open-handle limit is each server's own (OpenSSH: from
		// RLIMIT_NOFILE).
		return fmt.Sprintf("limits packet %d read %d write %d handles>0 %v", u(0), u(1), u(2), u(3) > 0)
	}
	return fmt.Sprintf("%x", b)
}

// attrString describes an attribute block and returns what follows it.
// Times before now less an hour are shown (the fixture's), later ones as
// "recent"; owners as present or not.
func attrString(t *testing.T, b []byte) (string, []byte) {
	t.Helper()
	d := b
	next := func() uint32 {
		if len(d) < 4 {
			t.Fatalf("truncated attributes")
		}
		v := binary.BigEndian.Uint32(d)
		d = d[4:]
		return v
	}
	flags := next()
	var parts []string
	if flags&0x1 != 0 {
		parts = append(parts, fmt.Sprintf("size=%d", uint64(next())<<32|uint64(next())))
	}
	if flags&0x2 != 0 {
		next()
		next()
		parts = append(parts, "owner")
	}
	if flags&0x4 != 0 {
		parts = append(parts, fmt.Sprintf("mode=%o", next()))
	}
	if flags&0x8 != 0 {
		next()
		parts = append(parts, "mtime="+timeString(int64(next())))
	}
	if flags&0x80000000 != 0 {
		for n := next(); n > 0; n-- {
			var k, v string
			k, d = splitString(t, d)
			v, d = splitString(t, d)
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ","), d
}

func timeString(sec int64) string {
	if sec > time.Now().Add(-time.Hour).Unix() {
		return "recent"
	}
	return strconv.FormatInt(sec, 10)
}

// nameEntries describes the entries of a NAME reply: name, attributes,
// and, if long, the long name with its owner and group left out (the
// owner-names row of the differences table; TestLongNames checks them).
func nameEntries(t *testing.T, b []byte, long bool) []string {
	t.Helper()
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	var out []string
	for range n {
		var name, longname, at string
		name, b = splitString(t, b)
		longname, b = splitString(t, b)
		at, b = attrString(t, b)
		e := name + " " + at
		if name == ".." {
			// The parent of the start directory is outside the fixture.
			e = ".. (parent)"
		} else if long {
			e += " [" + longNameShape(longname, strings.Contains(at, "mtime=recent")) + "]"
		}
		out = append(out, e)
	}
	return out
}

// longNameShape is an "ls -l" line without its owner and group, and with
// the time of day of entries made during the test (recent) left out.
//
// OpenSSH prints such an entry with the year instead of the time when its
// modification time is ahead of time(3): on Linux with fine-grained file
// timestamps (6.13 and later) a file's time can be ahead of time(3)'s
// clock, which moves only at the kernel's tick, so an entry made in the
// last milliseconds of a second can show "Dec  6  2026" where it would show
// "Dec  6 21:14" a tick later. That is the reference's clock, not a
// difference to find, so a recent entry dated today in the current year
// counts as made during the test too.
func longNameShape(l string, recent bool) string {
	f := strings.Fields(l)
	if len(f) < 9 {
		return l
	}
	when := strings.Join(f[5:8], " ")
	now := time.Now()
	aheadOfTime := recent && f[7] == strconv.Itoa(now.Year()) && strings.Join(f[5:7], " ") == now.Format("Jan 2")
	if strings.Contains(f[7], ":") || aheadOfTime {
		when = strings.Join(f[5:7], " ") + " hh:mm" // made during the test
	}
	return strings.Join([]string{f[0], f[1], f[4], when, strings.Join(f[8:], " ")}, " ")
}

// treeState lists dir as it is on disk: every entry's path, type, size
// and content digest (hidden upload files included, so that a leftover
// shows).
func treeState(t *testing.T, dir string) string {
	t.Helper()
	if tr, top, ok := s3Path(dir); ok {
		return "TREE " + strings.Join(s3TreeState(t, tr, top), ", ")
	}
	var out []string
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(de.Name(), ".skiff-upload-") {
			out = append(out, rel+" HIDDEN-UPLOAD")
			return nil
		}
		if de.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			out = append(out, rel+" "+err.Error())
			return nil
		}
		sum := sha256.Sum256(b)
		out = append(out, fmt.Sprintf("%s %d %s", rel, len(b), hex.EncodeToString(sum[:4])))
		return nil
	})
	return "TREE " + strings.Join(out, ", ")
}

type step struct {
	op        string
	args      []string
	slot      string // the handle slot an open or opendir fills
	pipelined bool
	skiff     string // Skiff's reply where it differs on purpose
	hasSkiff  bool
}

func parseScript(t *testing.T, script string) []step {
	t.Helper()
	var steps []step
	for _, s := range splitOutside(script, ';') {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var st step
		if body, want, ok := strings.Cut(s, "=>"); ok {
			s, st.skiff, st.hasSkiff = strings.TrimSpace(body), strings.TrimSpace(want), true
		}
		if strings.HasPrefix(s, "&") {
			st.pipelined, s = true, s[1:]
		}
		toks := tokens(t, s)
		st.op = toks[0]
		for _, a := range toks[1:] {
			if (st.op == "open" || st.op == "opendir") && strings.HasPrefix(a, "@") {
				st.slot = a[1:]
				continue
			}
			st.args = append(st.args, a)
		}
		steps = append(steps, st)
	}
	return steps
}

// splitOutside splits s at sep outside "quoted" strings.
func splitOutside(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func tokens(t *testing.T, s string) []string {
	var out []string
	for _, f := range splitOutside(s, ' ') {
		if f == "" {
			continue
		}
		if strings.HasPrefix(f, `"`) {
			u, err := strconv.Unquote(f)
			if err != nil {
				t.Fatalf("bad quoted argument %s: %v", f, err)
			}
			f = u
		}
		out = append(out, f)
	}
	return out
}

func openFlags(t *testing.T, s string) uint32 {
	var f uint32
	for _, c := range strings.TrimPrefix(s, "-") {
		bit, ok := map[rune]uint32{'r': fxfRead, 'w': fxfWrite, 'a': fxfAppend, 'c': fxfCreat, 't': fxfTrunc, 'x': fxfExcl}[c]
		if !ok {
			t.Fatalf("bad open flags %q", s)
		}
		f |= bit
	}
	return f
}

func attrBytes(t *testing.T, s string) []byte {
	var flags uint32
	var size, perm, mtime uint64
	var owner []byte
	for _, kv := range strings.Split(s, ",") {
		if kv == "-" || kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "size":
			flags, size = flags|0x1, num(t, v)
		case "uid":
			a, b, _ := strings.Cut(v, ":")
			flags, owner = flags|0x2, append(u32(uint32(num(t, a))), u32(uint32(num(t, b)))...)
		case "perm":
			flags, perm = flags|0x4, num(t, v)
		case "mtime":
			flags, mtime = flags|0x8, num(t, v)
		default:
			t.Fatalf("bad attribute %q", kv)
		}
	}
	b := u32(flags)
	if flags&0x1 != 0 {
		b = append(b, u64(size)...)
	}
	if flags&0x2 != 0 {
		b = append(b, owner...)
	}
	if flags&0x4 != 0 {
		b = append(b, u32(uint32(perm))...)
	}
	if flags&0x8 != 0 {
		b = append(b, append(u32(uint32(mtime)), u32(uint32(mtime))...)...)
	}
	return b
}

func num(t *testing.T, s string) uint64 {
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return n
}

// modeBits turns the setuid, setgid and sticky bits of a POSIX mode into
// Go's.
func modeBits(m uint64) os.FileMode {
	var b os.FileMode
	if m&0o4000 != 0 {
		b |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		b |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		b |= os.ModeSticky
	}
	return b
}

// data is a WRITE's payload: "rep:N" is N bytes of a pattern.
func data(s string) string {
	if n, ok := strings.CutPrefix(s, "rep:"); ok {
		k, _ := strconv.Atoi(n)
		var b strings.Builder
		for i := range k {
			b.WriteByte(byte('a' + i%26))
		}
		return b.String()
	}
	return s
}

// differencesTable is the table of intended differences in
// docs/SFTP-SERVER.md: the first cell of each row.
func differencesTable(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "SFTP-SERVER.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "Where Skiff differs on purpose")
	if !ok {
		t.Fatal("docs/SFTP-SERVER.md has no differences table")
	}
	var rows []string
	for _, line := range strings.Split(after, "\n") {
		line = strings.TrimSpace(line)
		if line == "" && len(rows) > 0 {
			break
		}
		if cells := strings.Split(line, "|"); len(cells) > 2 && !strings.HasPrefix(cells[1], "---") {
			rows = append(rows, strings.TrimFunc(cells[1], unicode.IsSpace))
		}
	}
	return rows[1:] // the header
}

// The harness's long-name shape takes OpenSSH's dating of a file ahead of
// its clock (the year, for a file made this instant) as made during the
// test, and nothing else: an old file keeps its year, and a recent entry
// dated another day is still told apart.
func TestLongNameShapeOfAnEntryAheadOfTheClock(t *testing.T) {
	now := time.Now()
	line := func(when string) string {
		return "-rw-r-----    1 alice    alice           1 " + when + " back\\slash"
	}
	today := now.Format("Jan _2")
	withTime, withYear := line(today+" 21:14"), line(today+"  "+now.Format("2006"))
	if a, b := longNameShape(withTime, true), longNameShape(withYear, true); a != b {
		t.Errorf("a recent entry dated with the year shapes as %q, with the time as %q; want the same", b, a)
	}
	if a, b := longNameShape(withTime, false), longNameShape(withYear, false); a == b {
		t.Errorf("an entry not made during the test shapes as %q whether dated with the year or the time", a)
	}
	old := line("Nov 14  2023")
	if got := longNameShape(old, false); !strings.Contains(got, "2023") {
		t.Errorf("an old entry shapes as %q, without its year", got)
	}
	otherDay := line(now.AddDate(0, 0, -2).Format("Jan _2") + "  " + now.AddDate(0, 0, -2).Format("2006"))
	if a, b := longNameShape(withTime, true), longNameShape(otherDay, true); a == b {
		t.Errorf("a recent entry dated another day shapes as today's (%q)", a)
	}
}
