package vfs_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// Raw-packet tests of the extensions of extensions.go.

// ext sends an extended request and returns the reply's type and fields
// after the request ID.
func (r *raw) ext(id uint32, name string, fields ...[]byte) (byte, []byte) {
	r.t.Helper()
	r.send(packet(typeExtended, append([][]byte{u32(id), str(name)}, fields...)...))
	typ, b := r.recv()
	if got := binary.BigEndian.Uint32(b); got != id {
		r.t.Fatalf("%s: reply for request %d, want %d", name, got, id)
	}
	return typ, b[4:]
}

// extStatus sends an extended request that must be answered with a
// status, and returns its code.
func (r *raw) extStatus(id uint32, name string, fields ...[]byte) uint32 {
	r.t.Helper()
	typ, b := r.ext(id, name, fields...)
	if typ != typeStatus {
		r.t.Fatalf("%s: reply of type %d (%x), want STATUS", name, typ, b)
	}
	return binary.BigEndian.Uint32(b)
}

// extName sends a request answered with one name, and returns it, or ""
// and the status code.
func (r *raw) extName(id uint32, name string, fields ...[]byte) (string, uint32) {
	r.t.Helper()
	typ, b := r.ext(id, name, fields...)
	switch typ {
	case typeStatus:
		return "", binary.BigEndian.Uint32(b)
	case typeName:
		if n := binary.BigEndian.Uint32(b); n != 1 {
			r.t.Fatalf("%s: %d names", name, n)
		}
		p, _ := splitString(r.t, b[4:])
		return p, codeOK
	}
	r.t.Fatalf("%s: reply of type %d", name, typ)
	return "", 0
}

// extensionsOf decodes the extensions of a VERSION reply's fields.
func extensionsOf(t *testing.T, version []byte) map[string]string {
	t.Helper()
	exts := map[string]string{}
	for rest := version[4:]; len(rest) > 0; {
		var name, data string
		name, rest = splitString(t, rest)
		data, rest = splitString(t, rest)
		exts[name] = data
	}
	return exts
}

func TestVersionAnnouncesOpenSSHExtensions(t *testing.T) {
	e := newEnv(t)
	r := newRaw(t, e.session)
	r.send(packet(typeInit, u32(3)))
	_, b := r.recv()
	exts := extensionsOf(t, b)
	for name, version := range map[string]string{
		"fstatvfs@openssh.com": "2", "lsetstat@openssh.com": "1", "expand-path@openssh.com": "1",
		"home-directory": "1", "copy-data": "1", "users-groups-by-id@openssh.com": "1",
		"check-file-name": "1", "check-file-handle": "1",
	} {
		if got, ok := exts[name]; !ok || got != version {
			t.Errorf("version reply: %s = %q (announced: %v); want %q", name, got, ok, version)
		}
	}
}

func TestExpandPathAndHomeDirectory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []option
		home   string
		expand map[string]string // path -> expanded, "" for no such file
	}{
		{"home", nil, "/My Files", map[string]string{
			"~": "/My Files", "~/": "/My Files", "~/a/../b": "/My Files/b", "x": "/My Files/x",
			"/Projects Shared With Me/~": "/Projects Shared With Me/~", "~bob": "", "~bob/x": "",
		}},
		{"jailed", []option{jailed}, "/Projects Shared With Me", map[string]string{
			"~": "/Projects Shared With Me", "~/P": "/Projects Shared With Me/P", "~root": "",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			r := newRawInit(t, e.session)
			id := uint32(1)
			for p, want := range tc.expand {
				got, code := r.extName(id, "expand-path@openssh.com", str(p))
				switch {
				case want == "" && code != 2:
					t.Errorf("expand-path %q: %q status %d; want no such file", p, got, code)
				case want != "" && got != want:
					t.Errorf("expand-path %q: %q status %d; want %q", p, got, code, want)
				}
				id++
			}
			if got, code := r.extName(id, "home-directory", str("")); got != tc.home {
				t.Errorf("home-directory: %q status %d; want %q", got, code, tc.home)
			}
			if _, code := r.extName(id+1, "home-directory", str("bob")); code != codeFail {
				t.Errorf("home-directory of another user: status %d; want failure (OpenSSH's answer)", code)
			}
			if code := r.extStatus(id+2, "expand-path@openssh.com"); code != codeBadMessage {
				t.Errorf("expand-path without a path: status %d", code)
			}
		})
	}
}

func TestFstatvfsAndLsetstat(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "a.txt"), "hello")
	r := newRawInit(t, e.session)
	h := r.open(1, "a.txt", fxfRead)
	typ, byPath := r.ext(2, "statvfs@openssh.com", str("a.txt"))
	if typ != typeExtendedReply {
		t.Fatalf("statvfs: reply of type %d", typ)
	}
	typ, byHandle := r.ext(3, "fstatvfs@openssh.com", str(string(h)))
	if typ != typeExtendedReply || len(byHandle) != 11*8 {
		t.Fatalf("fstatvfs: reply of type %d, %d bytes", typ, len(byHandle))
	}
	// Block size, total blocks and the flags are the same; free counts may move.
	for _, i := range []int{0, 1, 2, 9, 10} {
		if a, b := byPath[8*i:8*i+8], byHandle[8*i:8*i+8]; !bytes.Equal(a, b) {
			t.Errorf("fstatvfs field %d = %x; statvfs says %x", i, b, a)
		}
	}
	if code := r.extStatus(4, "fstatvfs@openssh.com", str("nope")); code != codeFail {
		t.Errorf("fstatvfs of an unknown handle: status %d", code)
	}

	mtime := uint32(time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC).Unix())
	if code := r.extStatus(5, "lsetstat@openssh.com", str("a.txt"), u32(0x8), u32(mtime), u32(mtime)); code != codeOK {
		t.Fatalf("lsetstat: status %d", code)
	}
	fi, err := statPath(filepath.Join(e.home(), "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.ModTime().Unix() != int64(mtime) {
		t.Errorf("after lsetstat: mtime %v; want %d", fi.ModTime(), mtime)
	}
	if code := r.extStatus(6, "lsetstat@openssh.com", str("missing.txt"), u32(0x8), u32(mtime), u32(mtime)); code != 2 {
		t.Errorf("lsetstat of a missing file: status %d", code)
	}
}

func TestUsersGroupsByID(t *testing.T) {
	e := newEnv(t)
	r := newRawInit(t, e.session)
	ids := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return str(string(b))
	}
	typ, b := r.ext(1, "users-groups-by-id@openssh.com", ids(0, 1000), ids(7))
	if typ != typeExtendedReply {
		t.Fatalf("reply of type %d", typ)
	}
	users, rest := splitString(t, b)
	groups, rest := splitString(t, rest)
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the lists", len(rest))
	}
	list := func(s string) []string {
		var out []string
		for b := []byte(s); len(b) > 0; {
			var n string
			n, b = splitString(t, b)
			out = append(out, n)
		}
		return out
	}
	// Every owner and group is the session's login, as long names show
	// ("user" without one).
	if got := list(users); len(got) != 2 || got[0] != "user" || got[1] != "user" {
		t.Errorf("user names %q", got)
	}
	if got := list(groups); len(got) != 1 || got[0] != "user" {
		t.Errorf("group names %q", got)
	}
	if code := r.extStatus(2, "users-groups-by-id@openssh.com", str("abc"), str("")); code != codeBadMessage {
		t.Errorf("ids not a multiple of 4 bytes: status %d", code)
	}
}

// checkFile asks for a checksum and returns the algorithm and hashes, or
// the status code.
func (r *raw) checkFile(id uint32, ext, target, algs string, start, length uint64, block uint32) (string, []byte, uint32) {
	r.t.Helper()
	typ, b := r.ext(id, ext, str(target), str(algs), u64(start), u64(length), u32(block))
	if typ == typeStatus {
		return "", nil, binary.BigEndian.Uint32(b)
	}
	if typ != typeExtendedReply {
		r.t.Fatalf("%s: reply of type %d", ext, typ)
	}
	name, rest := splitString(r.t, b)
	if name != "check-file" {
		r.t.Fatalf("%s: reply names %q", ext, name)
	}
	alg, rest := splitString(r.t, rest)
	return alg, rest, codeOK
}

func TestCheckFile(t *testing.T) {
	e := newEnv(t)
	data := make([]byte, 1<<20+1000)
	rand.Read(data)
	mustWrite(t, filepath.Join(e.home(), "data.bin"), string(data))
	mustWrite(t, filepath.Join(e.home(), "empty"), "")
	r := newRawInit(t, e.session)
	h := string(r.open(1, "data.bin", fxfRead))

	md5of := func(b []byte) []byte { s := md5.Sum(b); return s[:] }
	sha1of := func(b []byte) []byte { s := sha1.Sum(b); return s[:] }
	sha256of := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	sha512of := func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }
	blocks := func(f func([]byte) []byte, b []byte, size int) []byte {
		var out []byte
		for len(b) > 0 {
			n := min(size, len(b))
			out = append(out, f(b[:n])...)
			b = b[n:]
		}
		return out
	}
	for i, tc := range []struct {
		name, ext, target, algs string
		start, length           uint64
		block                   uint32
		alg                     string
		want                    []byte
	}{
		{"md5 by name", "check-file-name", "data.bin", "md5", 0, 0, 0, "md5", md5of(data)},
		{"sha1 by handle", "check-file-handle", h, "sha1", 0, 0, 0, "sha1", sha1of(data)},
		{"paramiko's name", "check-file", h, "sha256", 0, 0, 0, "sha256", sha256of(data)},
		{"first known of the list", "check-file-handle", h, "crc32,sha512,md5", 0, 0, 0, "sha512", sha512of(data)},
		{"range", "check-file-name", "/My Files/data.bin", "sha256", 1000, 5000, 0, "sha256", sha256of(data[1000:6000])},
		{"range past the end", "check-file-handle", h, "md5", 1 << 20, 1 << 30, 0, "md5", md5of(data[1<<20:])},
		{"start past the end", "check-file-handle", h, "md5", 1 << 30, 0, 0, "md5", md5of(nil)},
		{"blocks", "check-file-handle", h, "sha256", 0, 0, 256 << 10, "sha256", blocks(sha256of, data, 256<<10)},
		{"blocks of a range", "check-file-name", "data.bin", "md5", 10, 2000, 512, "md5", blocks(md5of, data[10:2010], 512)},
		{"empty file", "check-file-name", "empty", "sha1", 0, 0, 0, "sha1", sha1of(nil)},
		{"empty file by blocks", "check-file-name", "empty", "sha1", 0, 0, 4096, "sha1", nil},
	} {
		alg, got, code := r.checkFile(uint32(10+i), tc.ext, tc.target, tc.algs, tc.start, tc.length, tc.block)
		if code != codeOK || alg != tc.alg || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %s %x status %d; want %s %x", tc.name, alg, got, code, tc.alg, tc.want)
		}
	}

	for i, tc := range []struct {
		name, ext, target, algs string
		block                   uint32
		want                    uint32
	}{
		{"unknown algorithms", "check-file-name", "data.bin", "crc32,sha3-256", 0, codeUnsupported},
		{"block too small", "check-file-handle", h, "md5", 255, codeFail},
		{"too many blocks", "check-file-handle", h, "sha512", 256, codeFail},
		{"missing file", "check-file-name", "missing", "md5", 0, 2},
		{"directory", "check-file-name", "/My Files", "md5", 0, codeFail},
		{"unknown handle", "check-file-handle", "nope", "md5", 0, codeFail},
	} {
		if _, _, code := r.checkFile(uint32(40+i), tc.ext, tc.target, tc.algs, 0, 0, tc.block); code != tc.want {
			t.Errorf("%s: status %d; want %d", tc.name, code, tc.want)
		}
	}
}

// Checksums need the Download right, as a READ does: by name, and on a
// handle opened for writing where the user may only upload.
func TestCheckFileNeedsDownload(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.folder(folderA), "a.txt"), "secret")
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "P", Rights: vfs.List | vfs.Upload})
	r := newRawInit(t, e.session)
	if _, _, code := r.checkFile(1, "check-file-name", "/Projects Shared With Me/P/a.txt", "md5", 0, 0, 0); code != codeDenied {
		t.Errorf("check-file-name without Download: status %d", code)
	}
	h := string(r.open(2, "/Projects Shared With Me/P/a.txt", fxfRead|fxfWrite))
	if _, _, code := r.checkFile(3, "check-file-handle", h, "md5", 0, 0, 0); code != codeDenied {
		t.Errorf("check-file-handle without Download: status %d", code)
	}
}

// A checksum of a large file is work the client asked for, but not work to
// finish once nobody is left to answer: when the session ends (the
// connection dropped, the server stops, access is withdrawn) the hashing
// stops too, and the session's channels end within moments rather than
// when the file has been read. Found by FuzzServe: a WRITE far past the end
// makes a sparse file of 200 GB, then check-file hashed it for minutes.
func TestChecksumsStopWhenTheSessionEnds(t *testing.T) {
	skipOnS3(t, "a sparse file of many gigabytes needs a disk")
	big := func(e *env) {
		t.Helper()
		name := filepath.Join(e.home(), "big.bin")
		mustWrite(t, name, "")
		// Sparse: 64 GiB to read, and minutes of hashing.
		if err := os.Truncate(name, 64<<30); err != nil {
			t.Skipf("no sparse file here: %v", err)
		}
	}
	ended := func(t *testing.T, what string, done <-chan error) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still runs 10 s after the session was closed", what)
		}
	}

	t.Run("check-file", func(t *testing.T) {
		e := newEnv(t)
		big(e)
		r := newRawInit(t, e.session)
		r.send(packet(typeExtended, u32(1), str("check-file-name"), str("big.bin"), str("md5"), u64(0), u64(0), u32(0)))
		time.Sleep(200 * time.Millisecond) // the hashing has started
		closed := make(chan error, 1)
		go func() { closed <- e.session.Close() }()
		ended(t, "the channel's Serve", r.served)
		ended(t, "Session.Close", closed)
	})

	t.Run("connection lost", func(t *testing.T) {
		e := newEnv(t)
		big(e)
		r := newRawInit(t, e.session)
		r.send(packet(typeExtended, u32(1), str("check-file-name"), str("big.bin"), str("md5"), u64(0), u64(0), u32(0)))
		time.Sleep(200 * time.Millisecond)
		e.session.ConnectionLost()
		// The hashing stops; the channel goes on with what was received.
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if typ, _ := r.recv(); typ != typeStatus {
			t.Errorf("check-file after the connection was lost: reply of type %d, want a status", typ)
		}
		if code, _ := r.statusOf(2, packet(14, u32(2), str("/My Files/after"), u32(0)) /* MKDIR */); code != codeOK {
			t.Errorf("a request after the lost answer: status %d", code)
		}
	})

	t.Run("md5sum", func(t *testing.T) {
		e := newEnv(t)
		big(e)
		hashed := make(chan error, 1)
		go func() { hashed <- e.session.HashFile(context.Background(), "big.bin", md5.New()) }()
		time.Sleep(200 * time.Millisecond)
		e.session.Close()
		select {
		case err := <-hashed:
			if err == nil {
				t.Error("HashFile of a session that ended reported success")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("HashFile still runs 10 s after the session was closed")
		}
	})
}

// copyData sends a copy-data request and returns its status code.
func (r *raw) copyData(id uint32, from []byte, roff, n uint64, to []byte, woff uint64) uint32 {
	r.t.Helper()
	return r.extStatus(id, "copy-data", str(string(from)), u64(roff), u64(n), str(string(to)), u64(woff))
}

func TestCopyData(t *testing.T) {
	e := newEnv(t)
	data := make([]byte, 20<<20+123) // more than one chunk
	rand.Read(data)
	mustWrite(t, filepath.Join(e.home(), "src.bin"), string(data))
	mustWrite(t, filepath.Join(e.home(), "old.txt"), "0123456789")
	r := newRawInit(t, e.session)
	src := r.open(1, "src.bin", fxfRead)

	// sftp's cp: a new file, the whole source.
	dst := r.open(2, "copy.bin", fxfWrite|fxfCreat|fxfTrunc)
	if code := r.copyData(3, src, 0, 0, dst, 0); code != codeOK {
		t.Fatalf("copy-data: status %d", code)
	}
	if exists(filepath.Join(e.home(), "copy.bin")) {
		t.Error("the copy is visible before its close (atomic upload)")
	}
	r.closeHandle(4, dst)
	if got := mustRead(t, filepath.Join(e.home(), "copy.bin")); got != string(data) {
		t.Errorf("copy differs from the source (%d bytes, want %d)", len(got), len(data))
	}

	// A range, into an existing file at an offset.
	dst = r.open(5, "old.txt", fxfWrite)
	if code := r.copyData(6, src, 100, 4, dst, 3); code != codeOK {
		t.Fatalf("copy-data of a range: status %d", code)
	}
	r.closeHandle(7, dst)
	if got, want := mustRead(t, filepath.Join(e.home(), "old.txt")), "012"+string(data[100:104])+"789"; got != want {
		t.Errorf("after a range copy: %q; want %q", got, want)
	}

	// Appending: at the end, whatever the offset.
	dst = r.open(8, "old.txt", fxfWrite|fxfAppend)
	if code := r.copyData(9, src, 0, 5, dst, 0); code != codeOK {
		t.Fatalf("copy-data to an appending handle: status %d", code)
	}
	r.closeHandle(10, dst)
	if got, want := mustRead(t, filepath.Join(e.home(), "old.txt")), "012"+string(data[100:104])+"789"+string(data[:5]); got != want {
		t.Errorf("after an appending copy: %q; want %q", got, want)
	}

	// From an offset to the end (length 0).
	dst = r.open(14, "tail.bin", fxfWrite|fxfCreat|fxfTrunc)
	if code := r.copyData(15, src, 20<<20, 0, dst, 7); code != codeOK {
		t.Fatalf("copy-data from an offset to the end: status %d", code)
	}
	r.closeHandle(16, dst)
	if got, want := mustRead(t, filepath.Join(e.home(), "tail.bin")), "\x00\x00\x00\x00\x00\x00\x00"+string(data[20<<20:]); got != want {
		t.Errorf("copy from an offset to the end: %d bytes; want %d", len(got), len(want))
	}

	// Past the source's end: nothing to copy, OK.
	dst = r.open(11, "old.txt", fxfWrite)
	if code := r.copyData(12, src, 1<<40, 10, dst, 0); code != codeOK {
		t.Errorf("copy-data past the end: status %d", code)
	}

	both := r.open(13, "old.txt", fxfRead|fxfWrite)
	for i, tc := range []struct {
		name     string
		from, to []byte
		roff, n  uint64
		woff     uint64
		want     uint32
	}{
		// As OpenSSH: a handle not open for it is EBADF, one handle on
		// both sides is refused.
		{"from a handle open for writing only", dst, both, 0, 0, 100, codeNoSuchFile},
		{"to a handle open for reading only", both, src, 0, 0, 1 << 30, codeNoSuchFile},
		{"overlapping ranges of one handle", both, both, 0, 4, 2, codeFail},
		{"disjoint ranges of one handle", both, both, 0, 3, 20, codeFail},
		{"unknown source", []byte("nope"), dst, 0, 0, 0, codeFail},
		{"unknown destination", src, []byte("nope"), 0, 0, 0, codeFail},
		{"offset past int64", src, dst, 1 << 63, 1, 0, codeFail},
	} {
		if code := r.copyData(uint32(20+i), tc.from, tc.roff, tc.n, tc.to, tc.woff); code != tc.want {
			t.Errorf("%s: status %d; want %d", tc.name, code, tc.want)
		}
	}
	if code := r.extStatus(41, "copy-data", str(string(src)), u64(0)); code != codeBadMessage {
		t.Errorf("copy-data cut short: status %d", code)
	}
}

// copy-data needs the rights of a READ on the source and of a WRITE on the
// destination.
func TestCopyDataRights(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.folder(folderA), "a.txt"), "secret")
	mustWrite(t, filepath.Join(e.folder(folderB), "b.txt"), "public")
	e.shares.set(
		vfs.SharedFolder{ID: folderA, Name: "UploadOnly", Rights: vfs.List | vfs.Upload},
		vfs.SharedFolder{ID: folderB, Name: "ReadOnly", Rights: vfs.List | vfs.Download},
	)
	r := newRawInit(t, e.session)
	noRead := r.open(1, "/Projects Shared With Me/UploadOnly/a.txt", fxfRead|fxfWrite)
	dst := r.open(2, "mine.txt", fxfWrite|fxfCreat|fxfTrunc)
	if code := r.copyData(3, noRead, 0, 0, dst, 0); code != codeDenied {
		t.Errorf("copy from a file without Download: status %d", code)
	}
	readable := r.open(4, "/Projects Shared With Me/ReadOnly/b.txt", fxfRead)
	// A destination must be open for writing, which needs Upload.
	if code, _ := r.openStatus(5, "/Projects Shared With Me/ReadOnly/b.txt", fxfWrite); code != codeDenied {
		t.Errorf("open for writing in a read-only folder: status %d", code)
	}
	if code := r.copyData(6, readable, 0, 0, dst, 0); code != codeOK {
		t.Errorf("copy from a readable file to My Files: status %d", code)
	}
	r.closeHandle(7, dst)
	if got := mustRead(t, filepath.Join(e.home(), "mine.txt")); got != "public" {
		t.Errorf("copied %q", got)
	}
}
