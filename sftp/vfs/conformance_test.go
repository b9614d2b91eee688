package vfs_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// Raw-packet cases where Skiff answers as OpenSSH's sftp-server does
// (docs/SFTP-SERVER.md, "Like OpenSSH's sftp-server").

// Open flags of SFTP v3.
const (
	fxfRead, fxfWrite, fxfAppend = 0x1, 0x2, 0x4
	fxfCreat, fxfTrunc, fxfExcl  = 0x8, 0x10, 0x20
)

// write sends a WRITE of data at off and returns its status code.
func (r *raw) write(id uint32, h []byte, off uint64, data string) uint32 {
	r.t.Helper()
	r.send(packet(typeWrite, u32(id), str(string(h)), u64(off), str(data)))
	return r.status(id)
}

// closeHandle closes h and fails the test unless the server says OK.
func (r *raw) closeHandle(id uint32, h []byte) {
	r.t.Helper()
	r.send(packet(typeClose, u32(id), str(string(h))))
	if got := r.status(id); got != codeOK {
		r.t.Fatalf("close: status %d", got)
	}
}

// writeAndClose writes data at offset 0 and closes h (ids id and id+1),
// failing the test unless both succeed.
func (r *raw) writeAndClose(id uint32, h []byte, data string) {
	r.t.Helper()
	if got := r.write(id, h, 0, data); got != codeOK {
		r.t.Fatalf("write: status %d", got)
	}
	r.closeHandle(id+1, h)
}

// read reads n bytes at off: the data, or nil and the status code.
func (r *raw) read(id uint32, h []byte, off uint64, n uint32) ([]byte, uint32) {
	r.t.Helper()
	r.send(packet(typeRead, u32(id), str(string(h)), u64(off), u32(n)))
	typ, b := r.recv()
	switch typ {
	case typeData:
		return b[8:], codeOK
	case typeStatus:
		return nil, binary.BigEndian.Uint32(b[4:])
	}
	r.t.Fatalf("read: reply of type %d", typ)
	return nil, 0
}

// With APPEND every write goes to the end of the file, whatever offset the
// client sends (OpenSSH opens with O_APPEND): an existing file keeps its
// start, and so does a new file written at offset 0 twice.
func TestAppendWritesAtTheEnd(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "log.txt"), "HEAD-")
	r := newRawInit(t, e.session)

	for _, tc := range []struct {
		name   string
		pflags uint32
		want   string
	}{
		{"append to existing", fxfWrite | fxfAppend, "HEAD-TAIL"},
		{"append, create if missing", fxfWrite | fxfAppend | fxfCreat, "HEAD-TAILTAIL"},
		{"append, read too", fxfRead | fxfWrite | fxfAppend, "HEAD-TAILTAILTAIL"},
	} {
		h := r.open(1, "log.txt", tc.pflags)
		if got := r.write(2, h, 0, "TAIL"); got != codeOK {
			t.Fatalf("%s: write: status %d", tc.name, got)
		}
		r.closeHandle(3, h)
		if got := mustRead(t, filepath.Join(e.home(), "log.txt")); got != tc.want {
			t.Errorf("%s: file holds %q, want %q", tc.name, got, tc.want)
		}
	}

	// A new file (an atomic upload) opened to append.
	h := r.open(4, "new.txt", fxfWrite|fxfAppend|fxfCreat|fxfTrunc)
	for i, part := range []string{"one,", "two"} {
		if got := r.write(uint32(5+i), h, 0, part); got != codeOK {
			t.Fatalf("new file: write: status %d", got)
		}
	}
	r.closeHandle(7, h)
	if got := mustRead(t, filepath.Join(e.home(), "new.txt")); got != "one,two" {
		t.Errorf("new file holds %q, want %q", got, "one,two")
	}
}

// setstat sends FSETSTAT on h with a size (size >= 0) or times (mtime > 0).
func (r *raw) fsetstat(id uint32, h []byte, size int64, mtime uint32) uint32 {
	r.t.Helper()
	var a []byte
	switch {
	case size >= 0:
		a = append(u32(0x1), u64(uint64(size))...)
	default:
		a = append(append(u32(0x8), u32(mtime)...), u32(mtime)...)
	}
	r.send(packet(typeFsetstat, u32(id), str(string(h)), a))
	return r.status(id)
}

const (
	typeFsetstat, typeRenameReq = 10, 18
	codeNoSuchFile              = 2
)

// FSETSTAT acts on the open file, as OpenSSH's ftruncate and futimes do,
// not on whatever its path names now.
func TestFsetstatActsOnTheOpenFile(t *testing.T) {
	skipOnS3(t, "an open object follows its name, not the file a rename moved")
	e := newEnv(t)
	home := e.home()
	mustWrite(t, filepath.Join(home, "a"), "first a")
	r := newRawInit(t, e.session)
	h := r.open(1, "a", fxfRead|fxfWrite)
	r.send(packet(typeRenameReq, u32(2), str("a"), str("b")))
	if got := r.status(2); got != codeOK {
		t.Fatalf("rename: status %d", got)
	}
	mustWrite(t, filepath.Join(home, "a"), "second a")
	if got := r.fsetstat(3, h, 2, 0); got != codeOK {
		t.Fatalf("fsetstat size: status %d", got)
	}
	if got := r.fsetstat(4, h, -1, 1_000_000_000); got != codeOK {
		t.Fatalf("fsetstat times: status %d", got)
	}
	if got := mustRead(t, filepath.Join(home, "b")); got != "fi" {
		t.Errorf("the open file (now b) holds %q, want %q", got, "fi")
	}
	if got := mustRead(t, filepath.Join(home, "a")); got != "second a" {
		t.Errorf("the new a holds %q, want it untouched", got)
	}
	for name, want := range map[string]int64{"b": 1_000_000_000} {
		fi, err := statPath(filepath.Join(home, name))
		if err != nil || fi.ModTime().Unix() != want {
			t.Errorf("%s modified at %v (%v), want %d", name, fi.ModTime().Unix(), err, want)
		}
	}
	r.closeHandle(5, h)
}

// Setting times on a handle opened for reading needs the right SETSTAT by
// path needs (Upload): in a shared folder where the user may only
// download, FSETSTAT changes nothing, times (permission denied, as SETSTAT
// answers) or size. Where they may upload, and in their own files, a read
// handle sets the times, as the owner of a file can with OpenSSH.
func TestFsetstatTimesOnReadHandle(t *testing.T) {
	e := newEnv(t)
	e.shares.set(
		vfs.SharedFolder{ID: folderA, Name: "Shared", Rights: vfs.Download | vfs.List},
		vfs.SharedFolder{ID: folderB, Name: "Team", Rights: vfs.Download | vfs.List | vfs.Upload},
	)
	shared := filepath.Join(e.folder(folderA), "f.txt")
	mustWrite(t, shared, "shared")
	before, err := statPath(shared)
	if err != nil {
		t.Fatal(err)
	}
	r := newRawInit(t, e.session)
	h := r.open(1, "/"+vfs.SharedMount+"/Shared/f.txt", fxfRead)
	if got := r.fsetstat(2, h, -1, 1_000_000_000); got != codeDenied {
		t.Errorf("fsetstat times on a read handle, download only: status %d, want PERMISSION_DENIED", got)
	}
	if got := r.fsetstat(3, h, 2, 0); got == codeOK {
		t.Errorf("fsetstat size on a read handle succeeded")
	}
	r.closeHandle(4, h)
	if got := mustRead(t, shared); got != "shared" {
		t.Errorf("the shared file holds %q", got)
	}
	if fi, err := statPath(shared); err != nil || !fi.ModTime().Equal(before.ModTime()) {
		t.Errorf("a download-only member changed the shared file's time to %v (err %v)", fi.ModTime(), err)
	}

	for i, p := range map[string]string{
		"team": filepath.Join(e.folder(folderB), "g.txt"),
		"own":  filepath.Join(e.home(), "h.txt"),
	} {
		mustWrite(t, p, i)
		vpath := map[string]string{"team": "/" + vfs.SharedMount + "/Team/g.txt", "own": "/My Files/h.txt"}[i]
		h := r.open(5, vpath, fxfRead)
		if got := r.fsetstat(6, h, -1, 1_000_000_000); got != codeOK {
			t.Errorf("fsetstat times on a read handle, %s: status %d, want OK", i, got)
		}
		r.closeHandle(7, h)
		if fi, err := statPath(p); err != nil || fi.ModTime().Unix() != 1_000_000_000 {
			t.Errorf("%s: the file's time is %v (err %v), want the time set", i, fi.ModTime(), err)
		}
	}
	// A handle opened READ|CREAT (without WRITE) in one's own files is
	// opened as for writing (it may create): it sets times too.
	own := filepath.Join(e.home(), "h.txt")
	h = r.open(8, "/My Files/h.txt", fxfRead|fxfCreat)
	if got := r.fsetstat(9, h, -1, 1_100_000_000); got != codeOK {
		t.Errorf("fsetstat times on a READ|CREAT handle: status %d, want OK", got)
	}
	r.closeHandle(10, h)
	if fi, err := statPath(own); err != nil || fi.ModTime().Unix() != 1_100_000_000 {
		t.Errorf("READ|CREAT: the file's time is %v (err %v), want the time set", fi.ModTime(), err)
	}
}

// openStatus sends OPEN and returns the status code, or codeOK and the
// handle.
func (r *raw) openStatus(id uint32, p string, pflags uint32) (uint32, []byte) {
	r.t.Helper()
	r.send(packet(typeOpen, u32(id), str(p), u32(pflags), u32(0)))
	typ, b := r.recv()
	if typ == typeHandle {
		return codeOK, b[8:]
	}
	if typ != typeStatus {
		r.t.Fatalf("open %s: reply of type %d", p, typ)
	}
	return binary.BigEndian.Uint32(b[4:]), nil
}

// Exclusive create is decided at open, as open(2)'s O_CREAT|O_EXCL: of two
// channels creating the same new name, the second fails at open, and the
// first one's upload lands whole at close. After that, the name exists.
func TestExclusiveCreateDecidedAtOpen(t *testing.T) {
	e := newEnv(t)
	first, second := newRawInit(t, e.session), newRawInit(t, e.session)
	excl := uint32(fxfWrite | fxfCreat | fxfExcl)
	h := first.open(1, "new.txt", excl)
	if got, _ := second.openStatus(1, "new.txt", excl); got != codeFail {
		t.Errorf("second exclusive open of a name being created: status %d, want FAILURE", got)
	}
	first.writeAndClose(2, h, "mine")
	if got := mustRead(t, filepath.Join(e.home(), "new.txt")); got != "mine" {
		t.Errorf("new.txt holds %q, want the first creator's %q", got, "mine")
	}
	if got, _ := second.openStatus(4, "new.txt", excl); got != codeFail {
		t.Errorf("exclusive open of an existing file: status %d, want FAILURE", got)
	}
	if onS3 {
		return // the rest is the disk's hidden upload files
	}
	// What a crashed exclusive upload left does not hold the name.
	sum := sha256.Sum256([]byte("crashed.txt"))
	mustWrite(t, filepath.Join(e.home(), ".skiff-upload-excl-"+hex.EncodeToString(sum[:16])), "stale")
	h = first.open(5, "crashed.txt", excl)
	first.writeAndClose(6, h, "fresh")
	if got := mustRead(t, filepath.Join(e.home(), "crashed.txt")); got != "fresh" {
		t.Errorf("crashed.txt holds %q, want %q", got, "fresh")
	}
	h = second.open(7, "again.txt", excl)
	second.closeHandle(8, h)
	if got, _ := first.openStatus(9, "again.txt", excl); got != codeFail {
		t.Errorf("exclusive open after another's finished: status %d, want FAILURE", got)
	}
	entries, err := readDirPath(e.home())
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), ".skiff-upload-") {
			t.Errorf("hidden file %s left behind", de.Name())
		}
	}
}

// EXCL without CREAT is ignored, as open(2) ignores O_EXCL without O_CREAT.
func TestExclWithoutCreatIgnored(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "f.txt"), "old!")
	r := newRawInit(t, e.session)
	got, h := r.openStatus(1, "f.txt", fxfWrite|fxfExcl)
	if got != codeOK {
		t.Fatalf("open WRITE|EXCL of an existing file: status %d, want OK", got)
	}
	r.writeAndClose(2, h, "new")
	if got := mustRead(t, filepath.Join(e.home(), "f.txt")); got != "new!" {
		t.Errorf("f.txt holds %q, want %q", got, "new!")
	}
}

// A zero-length READ answers empty DATA, as OpenSSH does; past the end a
// READ answers EOF.
func TestZeroLengthRead(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "f.txt"), "0123456789")
	r := newRawInit(t, e.session)
	h := r.open(1, "f.txt", fxfRead)
	if data, code := r.read(2, h, 4, 0); code != codeOK || len(data) != 0 {
		t.Errorf("zero-length read mid-file: %q, status %d; want empty DATA", data, code)
	}
	if data, code := r.read(3, h, 4, 2); code != codeOK || string(data) != "45" {
		t.Errorf("read mid-file: %q, status %d", data, code)
	}
	if _, code := r.read(4, h, 10, 2); code != codeEOF {
		t.Errorf("read at the end: status %d, want EOF", code)
	}
	r.closeHandle(5, h)
}

// statusOf sends a request and returns the STATUS reply's code and message.
func (r *raw) statusOf(id uint32, req []byte) (uint32, string) {
	r.t.Helper()
	r.send(req)
	typ, b := r.recv()
	if typ != typeStatus {
		r.t.Fatalf("reply of type %d, want STATUS", typ)
	}
	msg, _ := splitString(r.t, b[8:])
	return binary.BigEndian.Uint32(b[4:]), msg
}

// The codes OpenSSH answers for directories that exist, are not empty or
// are files: MKDIR of an existing directory (even a virtual one, so that
// makedirs-style clients go on) is FAILURE; RMDIR of a non-empty one is
// FAILURE "Failure", not "file already exists"; a file where a directory is expected
// (ENOTDIR) is NO_SUCH_FILE.
func TestDirectoryErrorCodes(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "full", "f.txt"), "x")
	r := newRawInit(t, e.session)
	const typeOpendir, typeMkdir, typeRmdir = 11, 14, 15
	for _, p := range []string{"/", "/" + vfs.SharedMount, "/My Files", "/My Files/full"} {
		if code, msg := r.statusOf(1, packet(typeMkdir, u32(1), str(p), u32(0))); code != codeFail {
			t.Errorf("mkdir %s: status %d %q, want FAILURE", p, code, msg)
		}
	}
	if code, msg := r.statusOf(2, packet(typeRmdir, u32(2), str("full"))); code != codeFail || msg != "Failure" {
		t.Errorf("rmdir of a non-empty directory: status %d %q, want FAILURE \"Failure\" (OpenSSH's text)", code, msg)
	}
	for _, req := range [][]byte{
		packet(typeRmdir, u32(3), str("full/f.txt")),
		packet(typeOpendir, u32(3), str("full/f.txt")),
		packet(typeStat, u32(3), str("full/f.txt/below")),
		packet(typeMkdir, u32(3), str("full/f.txt/below"), u32(0)),
	} {
		if code, msg := r.statusOf(3, req); code != codeNoSuchFile {
			t.Errorf("request %d on a file as a directory: status %d %q, want NO_SUCH_FILE", req[4], code, msg)
		}
	}
}
