// Package storagetest checks a storage backend against the contract of
// storage.Tree, storage.File and storage.Upload (storage/tree.go). Every
// backend runs it in its own tests:
//
//	func TestContract(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Storage { return newBackend(t) })
//	}
//
// Where the contract lets a backend refuse something with an
// *storage.UnsupportedError (random writes, truncation to another size,
// reading an upload in progress, server-side copies), the checks accept the
// refusal, and otherwise check the result.
package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/storage"
)

// IDs of the account, user and project folder whose trees the checks use.
const (
	Account = "5b0e6a52-6a0c-4f4e-9a3c-1f8f2d6c0a11"
	User    = "0d3c8e2a-77f1-4c1e-8d0b-5a6f9e2b4c33"
	Folder  = "a1a1a1a1-0000-4000-8000-000000000001"
)

// Run runs every check, each as a subtest on a fresh Storage from open (the
// backend cleans it up with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) storage.Storage) {
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			e := &env{t: t, store: open(t)}
			c.run(e)
		})
	}
}

var checks = []struct {
	name string
	run  func(e *env)
}{
	{"TreesAndSpace", checkTreesAndSpace},
	{"Missing", checkMissing},
	{"UploadCommit", checkUploadCommit},
	{"UploadDiscard", checkUploadDiscard},
	{"UploadReplace", checkUploadReplace},
	{"UploadExclusive", checkUploadExclusive},
	{"UploadLarge", checkUploadLarge},
	{"UploadAppend", checkUploadAppend},
	{"UploadRandomWrites", checkUploadRandomWrites},
	{"UploadRename", checkUploadRename},
	{"UploadReopen", checkUploadReopen},
	{"OpenInPlace", checkOpenInPlace},
	{"PatchInPlace", checkPatchInPlace},
	{"ConcurrentReads", checkConcurrentReads},
	{"Directories", checkDirectories},
	{"Listing", checkListing},
	{"Move", checkMove},
	{"MoveBetweenTrees", checkMoveBetweenTrees},
	{"MoveOntoItself", checkMoveOntoItself},
	{"Times", checkTimes},
	{"CopyRange", checkCopyRange},
	{"FS", checkFS},
}

type env struct {
	t     *testing.T
	store storage.Storage
}

// home and folder are the two trees of the account.
func (e *env) home() storage.Tree   { return e.tree(e.store.UserHome(Account, User)) }
func (e *env) folder() storage.Tree { return e.tree(e.store.ProjectFolder(Account, Folder)) }

func (e *env) tree(t storage.Tree, err error) storage.Tree {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := t.Close(); err != nil {
			e.t.Errorf("close tree: %v", err)
		}
	})
	return t
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// put uploads data to name in 32 KiB writes, as SFTP clients send it.
func (e *env) put(tr storage.Tree, name string, data []byte) {
	e.t.Helper()
	u, err := tr.Create(name, 0)
	e.must(err)
	e.write(u, data)
	e.must(u.Commit())
	e.must(u.Close())
}

func (e *env) write(f storage.File, data []byte) {
	e.t.Helper()
	for off := 0; off < len(data); off += 32 << 10 {
		end := min(off+32<<10, len(data))
		n, err := f.WriteAt(data[off:end], int64(off))
		if err != nil || n != end-off {
			e.t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", end-off, off, n, err)
		}
	}
}

// read reads all of name through Open and ReadAt.
func (e *env) read(tr storage.Tree, name string) []byte {
	e.t.Helper()
	f, err := tr.Open(name)
	e.must(err)
	defer f.Close()
	return e.readAll(f)
}

func (e *env) readAll(f storage.File) []byte {
	e.t.Helper()
	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := f.ReadAt(buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			e.t.Fatalf("ReadAt(%d): %v", len(out), err)
		}
		if n == 0 {
			e.t.Fatalf("ReadAt(%d) returned 0 bytes and no error", len(out))
		}
	}
}

func (e *env) wantContent(tr storage.Tree, name string, want []byte) {
	e.t.Helper()
	if got := e.read(tr, name); !bytes.Equal(got, want) {
		e.t.Fatalf("%s holds %d bytes %q…, want %d bytes %q…", name, len(got), head(got), len(want), head(want))
	}
	fi, err := tr.Stat(name)
	e.must(err)
	if fi.Size() != int64(len(want)) || fi.IsDir() || !fi.Mode().IsRegular() {
		e.t.Errorf("Stat(%s) = size %d, mode %v; want a regular file of %d bytes", name, fi.Size(), fi.Mode(), len(want))
	}
}

func (e *env) wantMissing(tr storage.Tree, name string) {
	e.t.Helper()
	if fi, err := tr.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		e.t.Fatalf("Stat(%s) = %v, %v; want fs.ErrNotExist", name, fi, err)
	}
}

func (e *env) wantErr(what string, err, want error) {
	e.t.Helper()
	if !errors.Is(err, want) {
		e.t.Errorf("%s: %v; want %v", what, err, want)
	}
}

// unsupported reports whether err is a backend's refusal, and checks that
// it says why.
func (e *env) unsupported(what string, err error) bool {
	e.t.Helper()
	if !errors.Is(err, storage.ErrUnsupported) {
		return false
	}
	var ue *storage.UnsupportedError
	if !errors.As(err, &ue) || ue.Reason == "" {
		e.t.Errorf("%s: %v; a refusal must be an *storage.UnsupportedError with a Reason", what, err)
	}
	e.t.Logf("%s: unsupported by this backend: %v", what, err)
	return true
}

// names lists a directory through Readdir in batches of n, sorted, leaving
// out uploads in progress.
func (e *env) names(tr storage.Tree, dir string, n int) []string {
	e.t.Helper()
	d, err := tr.Open(dir)
	e.must(err)
	defer d.Close()
	var names []string
	for i := 0; ; i++ {
		infos, err := d.Readdir(n)
		if len(infos) > n {
			e.t.Fatalf("Readdir(%d) returned %d entries", n, len(infos))
		}
		for _, fi := range infos {
			if !storage.IsUploadTemp(fi.Name()) {
				names = append(names, fi.Name())
			}
		}
		if err == io.EOF {
			break
		}
		e.must(err)
		if i > 1e5 {
			e.t.Fatal("Readdir never returned io.EOF")
		}
	}
	sort.Strings(names)
	return names
}

// stored uploads n bytes of pattern(n, seed) to name in the home, and
// opens it for reading until the test ends.
func (e *env) stored(name string, n int, seed byte) (storage.Tree, []byte, storage.File) {
	e.t.Helper()
	tr := e.home()
	data := pattern(n, seed)
	e.put(tr, name, data)
	f, err := tr.Open(name)
	e.must(err)
	e.t.Cleanup(func() { f.Close() })
	return tr, data, f
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

// pattern is n bytes that differ at every offset of a 251-byte cycle, so a
// misplaced range shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ seed
	}
	return b
}

func checkTreesAndSpace(e *env) {
	home, folder := e.home(), e.folder()
	for _, tr := range []storage.Tree{home, folder} {
		fi, err := tr.Stat(".")
		e.must(err)
		if !fi.IsDir() || !fi.Mode().IsDir() {
			e.t.Errorf("the top of a tree: %v, want a directory", fi.Mode())
		}
		if got := e.names(tr, ".", 10); len(got) != 0 {
			e.t.Errorf("a new tree lists %q", got)
		}
	}
	// The two trees are distinct, and a tree opened again is the same.
	e.put(home, "a.txt", []byte("home"))
	e.wantMissing(folder, "a.txt")
	e.wantContent(e.home(), "a.txt", []byte("home"))
	for _, id := range []string{"", "not-a-uuid", "../" + User, "00000000-0000-0000-0000-000000000000"} {
		if tr, err := e.store.UserHome(Account, id); err == nil {
			tr.Close()
			e.t.Errorf("UserHome(%q) succeeded", id)
		}
		if tr, err := e.store.ProjectFolder(id, Folder); err == nil {
			tr.Close()
			e.t.Errorf("ProjectFolder with account %q succeeded", id)
		}
	}
	sp, err := e.store.FreeSpace(Account)
	e.must(err)
	if sp.BlockSize == 0 || sp.Blocks == 0 || sp.BlocksAvail > sp.Blocks || sp.NameMax == 0 {
		e.t.Errorf("FreeSpace = %+v", sp)
	}
}

func checkMissing(e *env) {
	tr := e.home()
	_, err := tr.Stat("none")
	e.wantErr("Stat", err, fs.ErrNotExist)
	_, err = tr.Lstat("none")
	e.wantErr("Lstat", err, fs.ErrNotExist)
	_, err = tr.Open("none")
	e.wantErr("Open", err, fs.ErrNotExist)
	_, err = tr.OpenFile("none", os.O_RDWR)
	e.wantErr("OpenFile", err, fs.ErrNotExist)
	_, err = tr.Open("none/deeper")
	e.wantErr("Open in a missing directory", err, fs.ErrNotExist)
	e.wantErr("Remove", tr.Remove("none"), fs.ErrNotExist)
	e.wantErr("Mkdir in a missing directory", tr.Mkdir("none/sub"), fs.ErrNotExist)
	e.wantErr("Move", tr.Move("none", tr, "other", false), fs.ErrNotExist)
	e.wantErr("Chtimes", tr.Chtimes("none", time.Now(), time.Now()), fs.ErrNotExist)
	if u, err := tr.Create("none/new.txt", 0); err == nil {
		// A backend without directories may accept it here, but it
		// must not be visible as a file in a missing directory later.
		u.Close()
	} else {
		e.wantErr("Create in a missing directory", err, fs.ErrNotExist)
	}
}

func checkUploadCommit(e *env) {
	tr := e.home()
	u, err := tr.Create("new.txt", 0)
	e.must(err)
	e.write(u, []byte("hello, "))
	e.write2(u, []byte("world"), 7)
	fi, err := u.Stat()
	e.must(err)
	if fi.Size() != 12 {
		e.t.Errorf("Stat of the upload: size %d, want 12", fi.Size())
	}
	e.must(u.Sync())
	// Invisible until Commit.
	e.wantMissing(tr, "new.txt")
	if got := e.names(tr, ".", 10); len(got) != 0 {
		e.t.Errorf("an upload in progress lists as %q", got)
	}
	e.must(u.Commit())
	e.must(u.Close())
	e.wantContent(tr, "new.txt", []byte("hello, world"))
	if got := e.names(tr, ".", 10); !slices.Equal(got, []string{"new.txt"}) {
		e.t.Errorf("after the upload the tree lists %q", got)
	}
	// An empty upload makes an empty file.
	u, err = tr.Create("empty", 0)
	e.must(err)
	e.must(u.Commit())
	e.must(u.Close())
	e.wantContent(tr, "empty", nil)
}

func (e *env) write2(f storage.File, data []byte, off int64) {
	e.t.Helper()
	if n, err := f.WriteAt(data, off); err != nil || n != len(data) {
		e.t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(data), off, n, err)
	}
}

func checkUploadDiscard(e *env) {
	tr := e.home()
	e.must(tr.Mkdir("d"))
	u, err := tr.Create("d/gone.txt", 0)
	e.must(err)
	e.write(u, pattern(100<<10, 1))
	e.must(u.Close())
	e.wantMissing(tr, "d/gone.txt")
	// Nothing left behind, not even a hidden upload: the directory can
	// be removed.
	d, err := tr.Open("d")
	e.must(err)
	infos, err := d.Readdir(10)
	d.Close()
	if len(infos) != 0 || err != io.EOF {
		e.t.Errorf("after a discarded upload the directory lists %d entries, %v", len(infos), err)
	}
	e.must(tr.Remove("d"))
}

func checkUploadReplace(e *env) {
	tr := e.home()
	e.put(tr, "f.txt", []byte("old content"))
	u, err := tr.Create("f.txt", 0)
	e.must(err)
	e.write(u, []byte("new"))
	// Readers see the old content until Commit, and a reader that opened
	// the old content keeps reading it.
	e.wantContent(tr, "f.txt", []byte("old content"))
	old, err := tr.Open("f.txt")
	e.must(err)
	defer old.Close()
	e.must(u.Commit())
	e.must(u.Close())
	e.wantContent(tr, "f.txt", []byte("new"))
	buf := make([]byte, 3)
	if n, err := old.ReadAt(buf, 0); n != 3 || string(buf) != "old" {
		e.t.Logf("a file opened before it was replaced reads %q, %v (backends may differ here)", buf[:n], err)
	}
	// A discarded upload leaves the old content.
	u, err = tr.Create("f.txt", 0)
	e.must(err)
	e.write(u, []byte("never"))
	e.must(u.Close())
	e.wantContent(tr, "f.txt", []byte("new"))
}

func checkUploadExclusive(e *env) {
	tr := e.home()
	e.put(tr, "taken", []byte("x"))
	_, err := tr.Create("taken", os.O_EXCL)
	e.wantErr("an exclusive upload of an existing name", err, fs.ErrExist)

	u, err := tr.Create("mine", os.O_EXCL)
	e.must(err)
	_, err = tr.Create("mine", os.O_EXCL)
	e.wantErr("a second exclusive upload of one name", err, fs.ErrExist)
	e.write(u, []byte("first"))
	e.must(u.Commit())
	e.must(u.Close())
	e.wantContent(tr, "mine", []byte("first"))

	// The name is free again after a discarded exclusive upload.
	u, err = tr.Create("later", os.O_EXCL)
	e.must(err)
	e.must(u.Close())
	u, err = tr.Create("later", os.O_EXCL)
	e.must(err)

	// Created meanwhile by a plain upload: the exclusive one fails at
	// Commit and leaves the other's content.
	e.put(tr, "later", []byte("theirs"))
	e.write(u, []byte("ours"))
	e.wantErr("Commit of an exclusive upload whose name was taken", u.Commit(), fs.ErrExist)
	e.must(u.Close())
	e.wantContent(tr, "later", []byte("theirs"))
}

// UploadLarge writes past the part sizes object stores use (5 MiB and
// up), and reads back at scattered offsets.
func checkUploadLarge(e *env) {
	tr := e.home()
	data := pattern(13<<20+12345, 7)
	e.put(tr, "big.bin", data)
	e.wantContent(tr, "big.bin", data)
	f, err := tr.Open("big.bin")
	e.must(err)
	defer f.Close()
	for _, off := range []int64{0, 5 << 20, 5<<20 - 1, 1, 13 << 20, int64(len(data)) - 1, 7<<20 + 3, 100} {
		buf := make([]byte, 70000)
		n, err := f.ReadAt(buf, off)
		want := data[off:min(off+int64(len(buf)), int64(len(data)))]
		if n != len(want) || !bytes.Equal(buf[:n], want) || (n < len(buf) && err != io.EOF) || (n == len(buf) && err != nil && err != io.EOF) {
			e.t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d bytes", len(buf), off, n, err, len(want))
		}
	}
	if n, err := f.ReadAt(make([]byte, 10), int64(len(data))); n != 0 || err != io.EOF {
		e.t.Errorf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := f.ReadAt(make([]byte, 10), int64(len(data))+100); n != 0 || err != io.EOF {
		e.t.Errorf("ReadAt past the end = %d, %v; want 0, io.EOF", n, err)
	}
}

func checkUploadAppend(e *env) {
	tr := e.home()
	u, err := tr.Create("log.txt", os.O_APPEND)
	e.must(err)
	for _, s := range []string{"one ", "two ", "three"} {
		if n, err := u.Write([]byte(s)); err != nil || n != len(s) {
			e.t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	e.must(u.Commit())
	e.must(u.Close())
	e.wantContent(tr, "log.txt", []byte("one two three"))

	// Appending to an existing file in place (SSH_FXF_APPEND on an
	// existing file, resumed uploads).
	f, err := tr.OpenFile("log.txt", os.O_WRONLY|os.O_APPEND)
	e.must(err)
	if _, err := f.Write([]byte(" four")); err != nil {
		f.Close()
		e.t.Fatalf("Write to a file opened to append: %v", err)
	}
	e.must(f.Close())
	e.wantContent(tr, "log.txt", []byte("one two three four"))
}

func checkUploadRandomWrites(e *env) {
	tr := e.home()
	u, err := tr.Create("r.bin", 0)
	e.must(err)
	defer u.Close()
	e.write2(u, []byte("0123456789"), 0)
	// Rewrite inside what was written, then leave a gap.
	_, err = u.WriteAt([]byte("ab"), 2)
	if e.unsupported("WriteAt behind the end of an upload", err) {
		return
	}
	e.must(err)
	_, err = u.WriteAt([]byte("Z"), 15)
	if e.unsupported("WriteAt past the end of an upload", err) {
		return
	}
	e.must(err)
	e.must(u.Commit())
	e.must(u.Close())
	e.wantContent(tr, "r.bin", []byte("01ab456789\x00\x00\x00\x00\x00Z"))
}

func checkUploadRename(e *env) {
	tr := e.home()
	e.must(tr.Mkdir("sub"))
	u, err := tr.Create("first.txt", 0)
	e.must(err)
	defer u.Close()
	e.write(u, []byte("moved while written"))
	e.must(u.Rename("sub/second.txt"))
	e.must(u.Commit())
	e.must(u.Close())
	e.wantMissing(tr, "first.txt")
	e.wantContent(tr, "sub/second.txt", []byte("moved while written"))
	if got := e.names(tr, ".", 10); !slices.Equal(got, []string{"sub"}) {
		e.t.Errorf("the top lists %q, want [sub]", got)
	}
}

func checkUploadReopen(e *env) {
	tr := e.home()
	u, err := tr.Create("w.txt", 0)
	e.must(err)
	defer u.Close()
	e.write(u, []byte("partial"))
	r, err := u.Reopen()
	if e.unsupported("Reopen", err) {
		return
	}
	e.must(err)
	defer r.Close()
	if got := e.readAll(r); string(got) != "partial" {
		e.t.Errorf("Reopen reads %q, want %q", got, "partial")
	}
	// The upload's own ReadAt sees what it wrote.
	buf := make([]byte, 4)
	if n, err := u.ReadAt(buf, 0); n != 4 || string(buf) != "part" {
		e.t.Errorf("the upload's ReadAt = %q, %v", buf[:n], err)
	}
	// The reopened file follows the writes, and once the upload is in
	// place reads the file it became.
	_, err = u.WriteAt([]byte(" more"), 7)
	e.must(err)
	if got := e.readAll(r); string(got) != "partial more" {
		e.t.Errorf("after more writes, Reopen's file reads %q", got)
	}
	e.must(u.Commit())
	e.must(u.Close())
	if got := e.readAll(r); string(got) != "partial more" {
		e.t.Errorf("after the commit, Reopen's file reads %q", got)
	}
}

func checkOpenInPlace(e *env) {
	tr := e.home()
	e.put(tr, "f.bin", []byte("0123456789"))
	// Stat of an open file.
	f, err := tr.OpenFile("f.bin", os.O_RDONLY)
	e.must(err)
	fi, err := f.Stat()
	e.must(err)
	if fi.Size() != 10 || fi.Name() != "f.bin" {
		e.t.Errorf("Stat of an open file: %s, %d bytes", fi.Name(), fi.Size())
	}
	e.must(f.Close())

	// Resume: write at the end of an existing file.
	f, err = tr.OpenFile("f.bin", os.O_RDWR)
	e.must(err)
	_, err = f.WriteAt([]byte("abc"), 10)
	if e.unsupported("WriteAt at the end of an existing file", err) {
		f.Close()
		return
	}
	e.must(err)
	// Overwrite in place, truncate.
	_, werr := f.WriteAt([]byte("X"), 0)
	terr := f.Truncate(12)
	e.must(f.Close())
	switch {
	case werr == nil && terr == nil:
		e.wantContent(tr, "f.bin", []byte("X123456789ab"))
	case werr == nil:
		e.unsupported("Truncate of an existing file", terr)
		e.wantContent(tr, "f.bin", []byte("X123456789abc"))
	case terr == nil:
		e.unsupported("WriteAt inside an existing file", werr)
		e.wantContent(tr, "f.bin", []byte("0123456789ab"))
	default:
		e.unsupported("WriteAt inside an existing file", werr)
		e.unsupported("Truncate of an existing file", terr)
		e.wantContent(tr, "f.bin", []byte("0123456789abc"))
	}
}

// A client patching an existing file in two places (an editor saving in
// place, a download manager filling ranges) leaves the bytes between as
// they were, and the handle shows the file as patched before the close.
func checkPatchInPlace(e *env) {
	tr := e.home()
	e.put(tr, "p.bin", []byte("0123456789"))
	f, err := tr.OpenFile("p.bin", os.O_RDWR)
	e.must(err)
	defer f.Close()
	_, err = f.WriteAt([]byte("AB"), 2)
	if e.unsupported("WriteAt inside an existing file", err) {
		return
	}
	e.must(err)
	_, err = f.WriteAt([]byte("C"), 6)
	if e.unsupported("WriteAt past a gap inside an existing file", err) {
		return
	}
	e.must(err)
	fi, err := f.Stat()
	e.must(err)
	if fi.Size() != 10 {
		e.t.Errorf("Stat of the patched file before the close: %d bytes, want 10", fi.Size())
	}
	if got := e.readAll(f); string(got) != "01AB45C789" {
		e.t.Errorf("read through the handle before the close: %q, want %q", got, "01AB45C789")
	}
	e.must(f.Close())
	e.wantContent(tr, "p.bin", []byte("01AB45C789"))

	// Grown by a truncation after a write at its start: what lay between
	// stays, the new end reads as zeros.
	f, err = tr.OpenFile("p.bin", os.O_RDWR)
	e.must(err)
	defer f.Close()
	_, err = f.WriteAt([]byte("X"), 0)
	e.must(err)
	err = f.Truncate(12)
	if e.unsupported("Truncate of an existing file", err) {
		return
	}
	e.must(err)
	e.must(f.Close())
	e.wantContent(tr, "p.bin", []byte("X1AB45C789\x00\x00"))
}

// A file moved onto its own name: as rename(2), nothing happens; without
// replacing, the name exists.
func checkMoveOntoItself(e *env) {
	tr := e.home()
	e.put(tr, "same", []byte("same"))
	e.wantErr("Move onto itself without replacing", tr.Move("same", tr, "same", false), fs.ErrExist)
	e.must(tr.Move("same", tr, "same", true))
	e.wantContent(tr, "same", []byte("same"))
}

func checkConcurrentReads(e *env) {
	_, data, f := e.stored("c.bin", 2<<20, 3)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for off := int64(g) * 32 << 10; off < int64(len(data)); off += 4 * 32 << 10 {
				n, err := f.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:n], data[off:off+int64(n)]) || n == 0 {
					errs <- fmt.Errorf("ReadAt(%d) read %d wrong bytes", off, n)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Error(err)
	}
}

func checkDirectories(e *env) {
	tr := e.home()
	e.must(tr.Mkdir("d"))
	e.wantErr("Mkdir of an existing directory", tr.Mkdir("d"), fs.ErrExist)
	e.must(tr.Mkdir("d/e"))
	e.put(tr, "f", []byte("x"))
	e.wantErr("Mkdir over a file", tr.Mkdir("f"), fs.ErrExist)
	for _, name := range []string{"d", "d/e"} {
		fi, err := tr.Stat(name)
		e.must(err)
		if !fi.IsDir() {
			e.t.Errorf("Stat(%s): not a directory", name)
		}
		if fi, err = tr.Lstat(name); err != nil || !fi.IsDir() {
			e.t.Errorf("Lstat(%s) = %v, %v", name, fi, err)
		}
	}
	// An empty directory survives.
	if got := e.names(tr, "d/e", 10); len(got) != 0 {
		e.t.Errorf("an empty directory lists %q", got)
	}
	if got := e.names(tr, ".", 10); !slices.Equal(got, []string{"d", "f"}) {
		e.t.Errorf("the top lists %q", got)
	}
	err := tr.Remove("d")
	if !errors.Is(err, syscall.ENOTEMPTY) {
		e.t.Errorf("Remove of a non-empty directory: %v; want ENOTEMPTY", err)
	}
	e.must(tr.Remove("d/e"))
	e.must(tr.Remove("d"))
	e.must(tr.Remove("f"))
	e.wantMissing(tr, "d")
	e.wantMissing(tr, "f")
	if got := e.names(tr, ".", 10); len(got) != 0 {
		e.t.Errorf("after the removals the top lists %q", got)
	}
}

func checkListing(e *env) {
	tr := e.home()
	e.must(tr.Mkdir("many"))
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("many/f%02d", i)
		e.put(tr, name, []byte(name))
		want = append(want, name[len("many/"):])
	}
	e.must(tr.Mkdir("many/sub"))
	e.put(tr, "many/sub/deep", []byte("x"))
	want = append(want, "sub")
	sort.Strings(want)
	for _, n := range []int{1, 7, 26, 1000} {
		if got := e.names(tr, "many", n); !slices.Equal(got, want) {
			e.t.Errorf("Readdir(%d) lists %q, want %q", n, got, want)
		}
	}
	// What the entries say.
	d, err := tr.Open("many")
	e.must(err)
	defer d.Close()
	infos, err := d.Readdir(100)
	if err != nil && err != io.EOF {
		e.t.Fatal(err)
	}
	for _, fi := range infos {
		switch {
		case fi.Name() == "sub" && !fi.IsDir():
			e.t.Errorf("%s lists as a file", fi.Name())
		case fi.Name() != "sub" && (fi.IsDir() || fi.Size() != int64(len("many/"+fi.Name()))):
			e.t.Errorf("%s lists as %v, %d bytes", fi.Name(), fi.Mode(), fi.Size())
		}
	}
	// A file cannot be listed.
	if f, err := tr.Open("many/f00"); err == nil {
		if infos, err := f.Readdir(10); err == nil || len(infos) != 0 {
			e.t.Errorf("Readdir of a file = %d entries, %v", len(infos), err)
		}
		f.Close()
	}
}

func checkMove(e *env) {
	tr := e.home()
	e.put(tr, "a", []byte("a"))
	e.put(tr, "b", []byte("b"))
	e.wantErr("Move onto an existing file without replace", tr.Move("a", tr, "b", false), fs.ErrExist)
	e.wantContent(tr, "a", []byte("a"))
	e.wantContent(tr, "b", []byte("b"))
	e.must(tr.Move("a", tr, "b", true))
	e.wantMissing(tr, "a")
	e.wantContent(tr, "b", []byte("a"))
	e.must(tr.Move("b", tr, "c", false))
	e.wantMissing(tr, "b")
	e.wantContent(tr, "c", []byte("a"))

	// A directory, with what it holds.
	e.must(tr.Mkdir("d"))
	e.must(tr.Mkdir("d/empty"))
	e.put(tr, "d/x", []byte("x"))
	e.put(tr, "c2", []byte("c2"))
	e.must(tr.Move("c2", tr, "d/c2", false))
	err := tr.Move("d", tr, "e", false)
	if e.unsupported("Move of a directory", err) {
		return
	}
	e.must(err)
	e.wantMissing(tr, "d")
	e.wantContent(tr, "e/x", []byte("x"))
	e.wantContent(tr, "e/c2", []byte("c2"))
	if fi, err := tr.Stat("e/empty"); err != nil || !fi.IsDir() {
		e.t.Errorf("the empty directory inside a moved one: %v, %v", fi, err)
	}
	if got := e.names(tr, ".", 10); !slices.Equal(got, []string{"c", "e"}) {
		e.t.Errorf("after the moves the top lists %q", got)
	}
	e.wantErr("Move of a directory onto a file", tr.Move("e", tr, "c", false), fs.ErrExist)
}

func checkMoveBetweenTrees(e *env) {
	home, folder := e.home(), e.folder()
	e.put(home, "f", []byte("from home"))
	e.must(home.Move("f", folder, "f", false))
	e.wantMissing(home, "f")
	e.wantContent(folder, "f", []byte("from home"))
	e.put(home, "g", []byte("g"))
	e.wantErr("Move onto an existing file in another tree", home.Move("g", folder, "f", false), fs.ErrExist)
	e.wantContent(home, "g", []byte("g"))
	e.must(folder.Mkdir("d"))
	e.put(folder, "d/x", []byte("x"))
	err := folder.Move("d", home, "d", false)
	if e.unsupported("Move of a directory between trees", err) {
		return
	}
	e.must(err)
	e.wantContent(home, "d/x", []byte("x"))
	e.wantMissing(folder, "d")
}

func checkTimes(e *env) {
	tr := e.home()
	when := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	later := when.Add(24 * time.Hour)
	e.put(tr, "t", []byte("t"))
	e.must(tr.Chtimes("t", when, when))
	e.wantTime(tr, "t", when)

	// Listings show it too (rclone compares them with its source).
	f, err := tr.Open(".")
	e.must(err)
	fis, err := f.Readdir(-1)
	f.Close()
	e.must(err)
	for _, fi := range fis {
		if fi.Name() == "t" && !fi.ModTime().Equal(when) {
			e.t.Errorf("listed t at %v, want %v", fi.ModTime(), when)
		}
	}

	// Through a handle open for reading, and seen by its Stat.
	f, err = tr.OpenFile("t", os.O_RDONLY)
	e.must(err)
	if fi, err := f.Stat(); err != nil || !fi.ModTime().Equal(when) {
		e.t.Errorf("Stat of a handle opened after Chtimes: %v, %v; want %v", fi, err, when)
	}
	e.must(f.Chtimes(later, later))
	fi, err := f.Stat()
	e.must(err)
	if !fi.ModTime().Equal(later) {
		e.t.Errorf("handle's Stat after its Chtimes: %v; want %v", fi.ModTime(), later)
	}
	e.must(f.Close())
	e.wantTime(tr, "t", later)

	// On an upload, the times are the committed file's ("put -p").
	u, err := tr.Create("u", 0)
	e.must(err)
	defer u.Close()
	e.write(u, []byte("u"))
	e.must(u.Chtimes(when, when))
	e.must(u.Commit())
	e.must(u.Close())
	e.wantTime(tr, "u", when)

	// Written again, even with the same bytes, a file's time is when it
	// was written.
	before := time.Now().Add(-time.Minute)
	e.put(tr, "u", []byte("u"))
	if got := e.mtime(tr, "u"); got.Before(before) {
		e.t.Errorf("rewritten file's time: %v; want about now", got)
	}
	f, err = tr.OpenFile("t", os.O_WRONLY)
	e.must(err)
	e.write2(f, []byte("T"), 0)
	e.must(f.Close())
	if got := e.mtime(tr, "t"); got.Before(before) {
		e.t.Errorf("file written in place: time %v; want about now", got)
	}

	// A time set through a handle open for writing, after the writes.
	f, err = tr.OpenFile("t", os.O_WRONLY|os.O_APPEND)
	e.must(err)
	_, err = f.Write([]byte("more"))
	e.must(err)
	e.must(f.Chtimes(when, when))
	e.must(f.Close())
	e.wantTime(tr, "t", when)
	e.wantContent(tr, "t", []byte("Tmore"))

	// Folders, and times that move with a rename and go with a removal.
	e.must(tr.Mkdir("d"))
	e.put(tr, "d/f", []byte("f"))
	e.must(tr.Chtimes("d/f", when, when))
	e.must(tr.Chtimes("d", later, later))
	e.wantTime(tr, "d", later)
	e.must(tr.Move("d", tr, "e", false))
	e.wantTime(tr, "e/f", when)
	e.must(tr.Move("e/f", e.folder(), "g", false))
	e.wantTime(e.folder(), "g", when)
	e.must(tr.Chtimes("e", later, later)) // the folder lost its file
	e.wantTime(tr, "e", later)
	e.must(tr.Remove("e"))
	e.must(tr.Mkdir("e"))
	if got := e.mtime(tr, "e"); got.Equal(later) {
		e.t.Errorf("a new folder in a removed one's place has the old one's time: %v", got)
	}
	e.wantErr("Chtimes", tr.Chtimes("none", when, when), fs.ErrNotExist)
}

// mtime is name's modification time.
func (e *env) mtime(tr storage.Tree, name string) time.Time {
	e.t.Helper()
	fi, err := tr.Stat(name)
	e.must(err)
	return fi.ModTime()
}

// wantTime checks name's modification time, by Stat and in its folder's
// listing.
func (e *env) wantTime(tr storage.Tree, name string, want time.Time) {
	e.t.Helper()
	if got := e.mtime(tr, name); !got.Equal(want) {
		e.t.Errorf("Stat(%q): time %v; want %v", name, got, want)
		return
	}
	f, err := tr.Open(path.Dir(name))
	e.must(err)
	defer f.Close()
	fis, err := f.Readdir(-1)
	e.must(err)
	for _, fi := range fis {
		if fi.Name() == path.Base(name) {
			if !fi.ModTime().Equal(want) {
				e.t.Errorf("listing of %q: %s at %v, want %v", path.Dir(name), fi.Name(), fi.ModTime(), want)
			}
			return
		}
	}
	e.t.Errorf("%q is not listed", name)
}

func checkCopyRange(e *env) {
	tr, data, src := e.stored("src", 300<<10, 9)
	u, err := tr.Create("dst", 0)
	e.must(err)
	defer u.Close()
	c, ok := u.(storage.RangeCopier)
	if !ok {
		e.t.Skip("the backend's uploads copy through a buffer")
	}
	var done int64
	for done < int64(len(data)) {
		n, err := c.CopyRange(src, done, done, 100<<10)
		if e.unsupported("CopyRange", err) {
			return
		}
		e.must(err)
		if n == 0 {
			e.t.Fatalf("CopyRange stopped at %d of %d", done, len(data))
		}
		done += int64(n)
	}
	if n, err := c.CopyRange(src, done, done, 10); n != 0 || err != nil {
		e.t.Errorf("CopyRange at the source's end = %d, %v; want 0, nil", n, err)
	}
	e.must(u.Commit())
	e.must(u.Close())
	e.wantContent(tr, "dst", data)
}

func checkFS(e *env) {
	tr := e.home()
	e.must(tr.Mkdir("w"))
	e.put(tr, "w/a", []byte("aa"))
	e.put(tr, "w/b", []byte("bbb"))
	var total int64
	err := fs.WalkDir(storage.FS(tr), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	e.must(err)
	if total != 5 {
		e.t.Errorf("a walk of the tree counts %d bytes, want 5", total)
	}
}
