package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
)

const (
	acct = "0b6f3c52-9d1e-4d2a-8a43-1f8b1c2d3e4f"
	user = "7c1d5a8e-2f3b-4c6d-9e0f-a1b2c3d4e5f6"
	mib  = 1 << 20
)

type env struct {
	srv    *s3test.Server
	client *awss3.Client
	store  *s3.Store
	tree   *s3.Tree
}

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.StopShared()
	os.Exit(code)
}

func newEnv(t *testing.T, c s3.Config) *env {
	t.Helper()
	srv := s3test.Shared(t)
	client := srv.Client()
	c.Bucket = srv.Bucket
	if c.Prefix == "" {
		c.Prefix = "skiff"
	}
	if c.PartSize == 0 {
		c.PartSize = s3.MinPartSize
	}
	if c.PartsInFlight == 0 {
		c.PartsInFlight = 2
	}
	store, err := s3.New(client, c)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := store.UserHome(acct, user)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, client: client, store: store, tree: tr.(*s3.Tree)}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(b)
	return b
}

func (e *env) put(t *testing.T, name string, data []byte) {
	t.Helper()
	u, err := e.tree.Create(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if n, err := u.WriteAt(data, 0); err != nil || n != len(data) {
		t.Fatalf("write %s: %d, %v", name, n, err)
	}
	if err := u.Commit(); err != nil {
		t.Fatalf("commit %s: %v", name, err)
	}
}

func (e *env) get(t *testing.T, name string) []byte {
	t.Helper()
	f, err := e.tree.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []byte
	buf := make([]byte, 32<<10)
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read %s at %d: %v", name, off, err)
		}
	}
}

func (e *env) pendingUploads(t *testing.T) int {
	t.Helper()
	out, err := e.client.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(e.srv.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

func (e *env) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	p := awss3.NewListObjectsV2Paginator(e.client, &awss3.ListObjectsV2Input{Bucket: aws.String(e.srv.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

func TestLayoutAndRoundTrip(t *testing.T) {
	e := newEnv(t, s3.Config{})
	if err := e.tree.Mkdir("docs"); err != nil {
		t.Fatal(err)
	}
	if err := e.tree.Mkdir("docs"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second mkdir: %v, want ErrExist", err)
	}
	if err := e.tree.Mkdir("no/such"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("mkdir in a missing folder: %v, want ErrNotExist", err)
	}
	data := []byte("hello")
	e.put(t, "docs/a.txt", data)
	if got := e.get(t, "docs/a.txt"); !bytes.Equal(got, data) {
		t.Fatalf("read %q", got)
	}
	fi, err := e.tree.Stat("docs/a.txt")
	if err != nil || fi.Size() != 5 || fi.IsDir() || fi.Name() != "a.txt" {
		t.Fatalf("stat: %v %v", fi, err)
	}
	if fi, err := e.tree.Stat("docs"); err != nil || !fi.IsDir() {
		t.Fatalf("stat folder: %v %v", fi, err)
	}
	if _, err := e.tree.Stat("docs/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat missing: %v", err)
	}
	want := []string{
		"skiff/" + acct + "/users/" + user + "/docs/",
		"skiff/" + acct + "/users/" + user + "/docs/a.txt",
	}
	if got := e.keys(t); !slices.Equal(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
	// An empty folder survives its last file.
	if err := e.tree.Remove("docs"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("remove non-empty folder: %v", err)
	}
	if err := e.tree.Remove("docs/a.txt"); err != nil {
		t.Fatal(err)
	}
	if fi, err := e.tree.Stat("docs"); err != nil || !fi.IsDir() {
		t.Fatalf("empty folder: %v %v", fi, err)
	}
	if err := e.tree.Remove("docs/a.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("remove missing: %v", err)
	}
	if err := e.tree.Remove("docs"); err != nil {
		t.Fatal(err)
	}
	if got := e.keys(t); len(got) != 0 {
		t.Fatalf("left %q", got)
	}
}

func TestNamesAndIDsAreChecked(t *testing.T) {
	e := newEnv(t, s3.Config{})
	for _, name := range []string{"", "/a", "../a", "a/../b", "a//b", "a/", "./a", "a\x00b", strings.Repeat("x", 1100)} {
		if _, err := e.tree.Stat(name); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q): %v, want a refusal", name, err)
		}
		if err := e.tree.Mkdir(name); err == nil {
			t.Errorf("Mkdir(%q) succeeded", name)
		}
	}
	for _, id := range []string{"", "..", "x", "00000000-0000-0000-0000-000000000000", acct + "/.."} {
		if _, err := e.store.UserHome(id, user); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("UserHome(%q): %v", id, err)
		}
		if _, err := e.store.ProjectFolder(acct, id); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("ProjectFolder(%q): %v", id, err)
		}
	}
	// Spellings of one UUID name one tree.
	upper, err := e.store.UserHome(strings.ToUpper(acct), "{"+user+"}")
	if err != nil || upper.(*s3.Tree).Root() != e.tree.Root() {
		t.Fatalf("upper-case IDs: %v, %v", upper, err)
	}
}

// A multipart upload is invisible until Commit, holds at most PartsInFlight
// parts in memory even when writes arrive out of order, and leaves nothing
// when closed without Commit.
func TestMultipartUpload(t *testing.T) {
	e := newEnv(t, s3.Config{PartsInFlight: 3})
	data := randBytes(17*mib + 123)
	u, err := e.tree.Create("big.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	// 32 KiB writes, each pair swapped, as pipelined SFTP writes arrive.
	const chunk = 32 << 10
	var offs []int
	for off := 0; off < len(data); off += chunk {
		offs = append(offs, off)
	}
	for i := 0; i+1 < len(offs); i += 2 {
		offs[i], offs[i+1] = offs[i+1], offs[i]
	}
	for _, off := range offs {
		end := min(off+chunk, len(data))
		if _, err := u.WriteAt(data[off:end], int64(off)); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	if _, err := e.tree.Stat("big.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("visible before commit: %v", err)
	}
	if n := e.pendingUploads(t); n != 1 {
		t.Fatalf("%d multipart uploads in progress, want 1", n)
	}
	if peak := s3.PeakParts(u); peak > 3 {
		t.Fatalf("%d parts in memory at once, want at most 3", peak)
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, "big.bin"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, differ from the %d written", len(got), len(data))
	}
	if n := e.pendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads left", n)
	}

	// Interrupted: aborted, nothing left.
	u, err = e.tree.Create("gone.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteAt(data[:12*mib], 0); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.pendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads left after an interrupted upload", n)
	}
	if _, err := e.tree.Stat("gone.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("interrupted upload visible: %v", err)
	}
}

func TestRandomWriteOutsideThePartsIsRefused(t *testing.T) {
	e := newEnv(t, s3.Config{PartsInFlight: 2})
	u, err := e.tree.Create("r.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.WriteAt(randBytes(11*mib), 0); err != nil {
		t.Fatal(err)
	}
	// Two full parts were sent: a write into them is refused.
	_, err = u.WriteAt([]byte("x"), 100)
	var ue *storage.UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "random writes") {
		t.Fatalf("write into a sent part: %v, want an UnsupportedError", err)
	}
	// Far beyond the parts in memory: refused too.
	if _, err := u.WriteAt([]byte("x"), 100*mib); !errors.Is(err, storage.ErrUnsupported) {
		t.Fatalf("write far ahead: %v", err)
	}
	// Within the part being written: fine.
	if _, err := u.WriteAt([]byte("y"), 11*mib-1); err != nil {
		t.Fatal(err)
	}
}

func TestSmallUploadIsOnePut(t *testing.T) {
	e := newEnv(t, s3.Config{})
	u, err := e.tree.Create("s.txt", os.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"one ", "two ", "three"} {
		if _, err := u.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 3)
	if n, err := u.ReadAt(buf, 4); err != nil || string(buf[:n]) != "two" {
		t.Fatalf("read back from the upload: %q %v", buf[:n], err)
	}
	if n := e.pendingUploads(t); n != 0 {
		t.Fatalf("a small upload started %d multipart uploads", n)
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	u.Close()
	if got := string(e.get(t, "s.txt")); got != "one two three" {
		t.Fatalf("got %q", got)
	}
}

func TestExclusiveCreate(t *testing.T) {
	e := newEnv(t, s3.Config{})
	e.put(t, "x", []byte("1"))
	if _, err := e.tree.Create("x", os.O_EXCL); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("exclusive create of an existing file: %v", err)
	}
	u, err := e.tree.Create("y", os.O_EXCL)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.WriteAt([]byte("mine"), 0)
	e.put(t, "y", []byte("theirs")) // someone else was quicker
	if err := u.Commit(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("exclusive commit over a new file: %v", err)
	}
	if got := string(e.get(t, "y")); got != "theirs" {
		t.Fatalf("got %q", got)
	}
}

// Resume and append: the old object's bytes are copied server-side (at
// least 5 MiB) or re-sent (less), then the new ones follow.
func TestResumeAndAppend(t *testing.T) {
	e := newEnv(t, s3.Config{})
	for _, tc := range []struct {
		name      string
		old, keep int
	}{
		{"small", 1000, 1000},
		{"large", 7 * mib, 7 * mib},
		{"resume-in-the-middle", 12 * mib, 6*mib + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := randBytes(tc.old)
			e.put(t, tc.name, old)
			more := randBytes(9*mib + 7)
			f, err := e.tree.OpenFile(tc.name, os.O_WRONLY)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(more, int64(tc.keep)); err != nil {
				t.Fatal(err)
			}
			if got := e.get(t, tc.name); !bytes.Equal(got, old) {
				t.Fatal("the file changed before Close")
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			want := append(slices.Clone(old[:tc.keep]), more...)
			if len(old) > len(want) {
				want = append(want, old[len(want):]...)
			}
			if got := e.get(t, tc.name); !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
	t.Run("append", func(t *testing.T) {
		e.put(t, "log", []byte("a\n"))
		f, err := e.tree.OpenFile("log", os.O_WRONLY|os.O_APPEND)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("b\n"))
		f.Write([]byte("c\n"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := string(e.get(t, "log")); got != "a\nb\nc\n" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("overwrite-keeps-the-tail", func(t *testing.T) {
		old := randBytes(13 * mib)
		e.put(t, "tail", old)
		f, err := e.tree.OpenFile("tail", os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := f.ReadAt(buf, 5); err != nil || !bytes.Equal(buf, old[5:15]) {
			t.Fatalf("read before writing: %v", err)
		}
		if _, err := f.WriteAt([]byte("XYZ"), 6*mib); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(old)
		copy(want[6*mib:], "XYZ")
		if got := e.get(t, "tail"); !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d", len(got), len(want))
		}
	})
	t.Run("truncate", func(t *testing.T) {
		old := randBytes(8 * mib)
		e.put(t, "trunc", old)
		f, err := e.tree.OpenFile("trunc", os.O_WRONLY)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(6 * mib); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := e.get(t, "trunc"); !bytes.Equal(got, old[:6*mib]) {
			t.Fatalf("got %d bytes", len(got))
		}
	})
	if n := e.pendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads left", n)
	}
}

func TestReadAheadServesOutOfOrderReads(t *testing.T) {
	e := newEnv(t, s3.Config{})
	data := randBytes(3*mib + 5)
	e.put(t, "f", data)
	f, err := e.tree.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const chunk = 32 << 10
	for off := 0; off < len(data); off += 2 * chunk {
		for _, o := range []int{off + chunk, off} { // swapped pairs
			if o >= len(data) {
				continue
			}
			buf := make([]byte, chunk)
			n, err := f.ReadAt(buf, int64(o))
			if err != nil && err != io.EOF {
				t.Fatalf("read at %d: %v", o, err)
			}
			if !bytes.Equal(buf[:n], data[o:min(o+chunk, len(data))]) {
				t.Fatalf("read at %d differs", o)
			}
		}
	}
	// A random read elsewhere, then back.
	buf := make([]byte, 10)
	if _, err := f.ReadAt(buf, 100); err != nil || !bytes.Equal(buf, data[100:110]) {
		t.Fatalf("random read: %v", err)
	}
	if n, err := f.ReadAt(buf, int64(len(data)-4)); n != 4 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", n, err)
	}
}

// A sequential read passes the buffer of each chunk it leaves behind to the
// chunk it fetches next, rather than taking a new 4 MiB buffer per chunk,
// and the buffers are not the garbage collector's;
// reads that jump about, and chunks dropped while their GET runs, still
// read the right bytes.
func TestSequentialReadsReuseChunkBuffers(t *testing.T) {
	e := newEnv(t, s3.Config{})
	const size = 48 * mib // twelve chunks
	data := randBytes(size)
	e.put(t, "big", data)
	f, err := e.tree.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for off := 0; off < size; off += len(buf) {
		n, err := f.ReadAt(buf, int64(off))
		if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], data[off:off+n]) {
			t.Fatalf("read at %d: %d bytes, %v", off, n, err)
		}
	}
	runtime.ReadMemStats(&after)
	// Whole chunks are pooled outside the Go heap: none of the 4 MiB
	// buffers is the collector's (on the heap, the window's five and the
	// spare made 24 MiB; a new buffer per chunk made 48).
	if got := after.TotalAlloc - before.TotalAlloc; got > 4*mib {
		t.Errorf("reading 48 MiB allocated %d MiB on the heap", got/mib)
	}
	// Jumps back and forth, each dropping the chunks it had, done or not.
	for _, off := range []int{0, 40 * mib, 4*mib + 7, 44 * mib, 12 * mib, 0, size - 10} {
		n, err := f.ReadAt(buf, int64(off))
		if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], data[off:off+n]) {
			t.Fatalf("read at %d after a jump: %d bytes, %v", off, n, err)
		}
	}
}

func TestListingPages(t *testing.T) {
	e := newEnv(t, s3.Config{})
	ctx := context.Background()
	// 2,100 objects written straight to the bucket (three listing pages),
	// a sub-folder without a marker, and one with.
	for i := range 2100 {
		_, err := e.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(e.srv.Bucket),
			Key: aws.String(e.tree.Root() + "many/f" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)), Body: strings.NewReader("")})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.put(t, "many/sub-implied-x", nil)
	if err := e.tree.Mkdir("many/sub"); err != nil {
		t.Fatal(err)
	}
	e.put(t, "many/sub/inner", []byte("1"))
	d, err := e.tree.Open("many")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	seen := map[string]bool{}
	for {
		list, err := d.Readdir(700)
		for _, fi := range list {
			if seen[fi.Name()] {
				t.Fatalf("%s listed twice", fi.Name())
			}
			seen[fi.Name()] = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 2102 || !seen["sub"] || seen["sub/inner"] {
		t.Fatalf("listed %d entries (sub: %v)", len(seen), seen["sub"])
	}
}

func TestMove(t *testing.T) {
	e := newEnv(t, s3.Config{MoveMaxFiles: 3})
	e.put(t, "a", []byte("A"))
	if err := e.tree.Move("a", e.tree, "b", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tree.Stat("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("source left: %v", err)
	}
	if got := string(e.get(t, "b")); got != "A" {
		t.Fatalf("got %q", got)
	}
	e.put(t, "c", []byte("C"))
	if err := e.tree.Move("c", e.tree, "b", false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("no-replace move onto a file: %v", err)
	}
	if err := e.tree.Move("c", e.tree, "b", true); err != nil {
		t.Fatal(err)
	}
	if got := string(e.get(t, "b")); got != "C" {
		t.Fatalf("got %q", got)
	}
	// A folder, to another tree of the account.
	e.tree.Mkdir("d")
	e.tree.Mkdir("d/empty")
	e.put(t, "d/f", []byte("F"))
	proj, err := e.store.ProjectFolder(acct, user)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tree.Move("d", proj, "moved", false); err != nil {
		t.Fatal(err)
	}
	if fi, err := proj.Stat("moved/empty"); err != nil || !fi.IsDir() {
		t.Fatalf("empty folder did not move: %v", err)
	}
	if _, err := e.tree.Stat("d"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("source folder left: %v", err)
	}
	// Above the limit: refused, nothing changed.
	e.tree.Mkdir("big")
	for _, n := range []string{"1", "2", "3"} {
		e.put(t, "big/"+n, []byte(n))
	}
	err = e.tree.Move("big", e.tree, "big2", false)
	var ue *storage.UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "more than 3 files") {
		t.Fatalf("moving a large folder: %v", err)
	}
	if _, err := e.tree.Stat("big2"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("refused move left a target: %v", err)
	}
	if err := e.tree.Move("big", e.tree, "big/in", false); err == nil {
		t.Fatal("moved a folder into itself")
	}
}

func TestSweepAbortsOrphans(t *testing.T) {
	e := newEnv(t, s3.Config{OrphanAge: time.Nanosecond})
	ctx := context.Background()
	// An upload a killed node left behind, and one outside the prefix.
	for _, key := range []string{e.tree.Root() + "orphan", "other/x"} {
		if _, err := e.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(e.srv.Bucket), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // Initiated has a resolution of a second
	n, err := e.store.SweepOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
	if n := e.pendingUploads(t); n != 1 {
		t.Fatalf("%d uploads left, want the one outside the prefix", n)
	}
}

func TestRemoveTree(t *testing.T) {
	e := newEnv(t, s3.Config{})
	e.tree.Mkdir("x")
	e.put(t, "x/y", []byte("y"))
	other, _ := e.store.UserHome(acct, "11111111-2222-4333-8444-555555555555")
	other.Mkdir("keep")
	if err := e.store.RemoveUserHome(acct, user); err != nil {
		t.Fatal(err)
	}
	if got := e.keys(t); len(got) != 1 || !strings.HasSuffix(got[0], "/keep/") {
		t.Fatalf("left %q", got)
	}
}

func TestParseURL(t *testing.T) {
	c, err := s3.ParseURL("s3://bkt/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1&part_size=16MiB&parts_in_flight=8&move_max_files=50")
	if err != nil {
		t.Fatal(err)
	}
	if c.Bucket != "bkt" || c.Prefix != "some/prefix" || c.Endpoint != "http://127.0.0.1:9000" || c.Region != "eu-west-1" ||
		!c.PathStyle || c.PartSize != 16*mib || c.PartsInFlight != 8 || c.MoveMaxFiles != 50 || c.OrphanAge != s3.DefaultOrphanAge ||
		c.StallTimeout != s3.DefaultStallTimeout {
		t.Fatalf("%+v", c)
	}
	if c, err := s3.ParseURL("s3://bkt/p?stall_timeout=90s"); err != nil || c.StallTimeout != 90*time.Second {
		t.Errorf("stall_timeout=90s: %v, %v", c.StallTimeout, err)
	}
	for _, bad := range []string{"http://b/p", "s3://user:pw@b/p", "s3:///p", "s3://b/p?part_size=1MiB", "s3://b/p?nope=1", "s3://b/a/../b",
		"s3://b/p?stall_timeout=-1s", "s3://b/p?stall_timeout=soon"} {
		if _, err := s3.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) succeeded", bad)
		}
	}
}

func TestUsage(t *testing.T) {
	e := newEnv(t, s3.Config{})
	e.tree.Mkdir("d")
	e.put(t, "d/a", []byte("12345"))
	e.put(t, "b", []byte("123"))
	e.put(t, storage.UploadTempPrefix+"x", []byte("123"))
	proj, _ := e.store.ProjectFolder(acct, "11111111-2222-4333-8444-555555555555")
	proj.Mkdir("empty")
	ids, err := e.store.Accounts()
	if err != nil || !slices.Equal(ids, []string{acct}) {
		t.Fatalf("accounts %q, %v", ids, err)
	}
	sizes, err := e.store.TreeSizes(acct, storage.IsUploadTemp)
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 1 || sizes[user] != 8 {
		t.Fatalf("sizes %v", sizes)
	}
}

func TestTopLevelObjects(t *testing.T) {
	e := newEnv(t, s3.Config{})
	ctx := context.Background()
	if _, err := e.store.ReadTop(ctx, ".skiff-storage"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing marker: %v", err)
	}
	if err := e.store.CreateTop(ctx, ".skiff-storage", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateTop(ctx, ".skiff-storage", []byte("two")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second marker: %v", err)
	}
	if b, err := e.store.ReadTop(ctx, ".skiff-storage"); err != nil || string(b) != "one" {
		t.Fatalf("marker %q, %v", b, err)
	}
	for _, bad := range []string{"", "a/b", "..", acct} {
		if err := e.store.CreateTop(ctx, bad, nil); err == nil {
			t.Errorf("CreateTop(%q) succeeded", bad)
		}
	}
}

// Reading an object uploaded in parts logs nothing (the SDK would warn on
// every GET that it cannot check a composite checksum).
func TestReadsOfMultipartObjectsLogNothing(t *testing.T) {
	srv := s3test.Start(t)
	var logged strings.Builder
	opts := srv.Options()
	// As config.LoadDefaultConfig leaves them (s3.Open).
	opts.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
	opts.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	opts.Logger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		fmt.Fprintf(&logged, format+"\n", v...)
	})
	store, err := s3.New(awss3.New(opts), s3.Config{Bucket: srv.Bucket, PartSize: s3.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := store.UserHome(acct, user)
	e := &env{srv: srv, store: store, tree: tr.(*s3.Tree)}
	data := randBytes(11 * mib)
	e.put(t, "parts.bin", data)
	if got := e.get(t, "parts.bin"); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	if logged.Len() > 0 {
		t.Fatalf("the SDK logged:\n%s", logged.String())
	}
}

// A file patched at two places parts apart keeps every byte between: the
// gap is filled with the old object's bytes, sent in parts of its own.
func TestPatchFarApartKeepsTheBytesBetween(t *testing.T) {
	e := newEnv(t, s3.Config{})
	old := randBytes(12 * mib)
	e.put(t, "f", old)
	f, err := e.tree.OpenFile("f", os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{100, 11 * mib} {
		if _, err := f.WriteAt([]byte("patch"), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(old)
	copy(want[100:], "patch")
	copy(want[11*mib:], "patch")
	if got := e.get(t, "f"); !bytes.Equal(got, want) {
		t.Fatalf("after the patch: %d bytes, equal to the old ones with both patches: %v", len(got), bytes.Equal(got, want))
	}
}

// An upload reopened for reading reads from memory until a part is sent;
// after that, the parts sent cannot be read back until the upload is
// complete, and the error says so.
func TestReopenAfterAPartWasSent(t *testing.T) {
	e := newEnv(t, s3.Config{})
	u, err := e.tree.Create("big", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	early, err := u.Reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	data := randBytes(s3.MinPartSize + 10)
	if _, err := u.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Reopen(); !errors.Is(err, storage.ErrUnsupported) || !strings.Contains(err.Error(), "once part of its upload was sent") {
		t.Errorf("Reopen after a part was sent: %v", err)
	}
	buf := make([]byte, 10)
	if _, err := early.ReadAt(buf, 0); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("reading a part sent: %v", err)
	}
	if n, err := early.ReadAt(buf, s3.MinPartSize); n != 10 || !bytes.Equal(buf, data[s3.MinPartSize:]) {
		t.Errorf("reading what is still in memory: %d, %v", n, err)
	}
	if err := u.Close(); err != nil { // abandoned
		t.Fatal(err)
	}
	if _, err := early.ReadAt(buf, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading an abandoned upload: %v", err)
	}
}

// Two handles writing one file in place: the first to close replaces it,
// the second fails rather than undo that change (the new version would
// start from the old one), and a reader of the old version learns it was
// replaced. Both failures are storage.ErrChanged, not a name that exists.
func TestAFileChangedSinceItWasOpened(t *testing.T) {
	e := newEnv(t, s3.Config{})
	e.put(t, "f", []byte("0123456789"))
	reader, err := e.tree.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	var handles [2]storage.File
	for i := range handles {
		if handles[i], err = e.tree.OpenFile("f", os.O_RDWR); err != nil {
			t.Fatal(err)
		}
		defer handles[i].Close()
		if _, err := handles[i].WriteAt(bytes.Repeat([]byte{'A' + byte(i)}, 10), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := handles[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := handles[1].Close(); !errors.Is(err, storage.ErrChanged) || errors.Is(err, fs.ErrExist) {
		t.Errorf("the second close: %v, want ErrChanged", err)
	}
	if got := e.get(t, "f"); string(got) != "AAAAAAAAAA" {
		t.Errorf("the file holds %q, want the first close's %q", got, "AAAAAAAAAA")
	}
	if _, err := reader.ReadAt(make([]byte, 4), 0); !errors.Is(err, storage.ErrChanged) {
		t.Errorf("reading the old version: %v, want ErrChanged", err)
	}
}
