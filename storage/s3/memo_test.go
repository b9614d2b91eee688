package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/storage/storagetest"
)

// newLoggedEnv is newEnv whose store's requests are logged.
func newLoggedEnv(t *testing.T) (*env, *s3test.RequestLog) {
	t.Helper()
	e := newEnv(t, s3.Config{})
	client, log := e.srv.LoggedClient()
	store, err := s3.New(client, s3.Config{Bucket: e.srv.Bucket, Prefix: "skiff", PartSize: s3.MinPartSize, PartsInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := store.UserHome(acct, user)
	if err != nil {
		t.Fatal(err)
	}
	e.store, e.tree = store, tr.(*s3.Tree)
	return e, log
}

// Within one of its memo's spans (a client's request) a tree asks the store
// about a name once, however many times the request asks; outside a span,
// and in the next span, it asks again.
func TestATreeWithAMemoAsksOncePerSpan(t *testing.T) {
	e, log := newLoggedEnv(t)
	e.put(t, "a.txt", []byte("data"))
	var m storage.Memo
	tr := e.tree.WithMemo(&m)
	log.Take()

	stats := func() {
		for range 2 {
			if fi, err := tr.Stat("a.txt"); err != nil || fi.Size() != 4 {
				t.Fatalf("stat a.txt: %v, %v", fi, err)
			}
			if _, err := tr.Lstat("missing.txt"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("stat of a missing name: %v", err)
			}
		}
		f, err := tr.Open("a.txt")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	stats()
	if got := log.Take(); len(got) != 7 { // 3 HEADs of a.txt, 2 of missing.txt and 2 listings
		t.Errorf("outside a span, %d requests: %q; want each stat asked (7)", len(got), got)
	}
	m.Begin()
	stats()
	if got := log.Take(); len(got) != 3 {
		t.Errorf("within a span, %d requests: %q; want one HEAD of each name and one listing (3)", len(got), got)
	}
	m.End()
	m.Begin()
	defer m.End()
	stats()
	if got := log.Take(); len(got) != 3 {
		t.Errorf("in the next span, %d requests: %q; want the names asked again (3)", len(got), got)
	}
}

// A tree's memo never hides the tree's own changes, made in the same span:
// after every change, the next stat asks the store.
func TestATreeWithAMemoSeesItsOwnChanges(t *testing.T) {
	e, _ := newLoggedEnv(t)
	e.put(t, "a.txt", []byte("data"))
	var m storage.Memo
	tr := e.tree.WithMemo(&m)
	m.Begin()
	defer m.End()
	missing := func(name string) {
		t.Helper()
		if _, err := tr.Stat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat %s: %v; want it missing", name, err)
		}
	}
	size := func(name string, want int64) {
		t.Helper()
		if fi, err := tr.Stat(name); err != nil || fi.Size() != want || fi.IsDir() {
			t.Errorf("stat %s: %v, %v; want a file of %d bytes", name, fi, err, want)
		}
	}

	missing("n.txt")
	u, err := tr.Create("n.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteAt([]byte("new!!"), 0); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	u.Close()
	size("n.txt", 5)

	f, err := tr.OpenFile("n.txt", os.O_RDWR) // written in place
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("longer"), 5); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	size("n.txt", 11)

	missing("m")
	if err := tr.Mkdir("m"); err != nil {
		t.Fatal(err)
	}
	if fi, err := tr.Stat("m"); err != nil || !fi.IsDir() {
		t.Errorf("stat of a folder just made: %v, %v", fi, err)
	}

	size("a.txt", 4)
	if err := tr.Move("a.txt", tr, "m/b.txt", false); err != nil {
		t.Fatal(err)
	}
	missing("a.txt")
	size("m/b.txt", 4)

	if err := tr.Remove("n.txt"); err != nil {
		t.Fatal(err)
	}
	missing("n.txt")
	if err := tr.Remove("m"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("removing a folder that holds a file: %v", err)
	}
}

// An upload that had a time set keeps it with the ETag its own write
// returned: no request to learn which version it wrote.
func TestAnUploadKeepsItsTimeWithTheETagItWrote(t *testing.T) {
	e, log := newLoggedEnv(t)
	e.store.KeepTimes(storagetest.NewMemTimes())
	set := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, size := range []int{5, 2*s3.MinPartSize + 1} { // one PutObject; a multipart upload
		name := fmt.Sprintf("kept-%d.bin", size)
		u, err := e.tree.Create(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.WriteAt(randBytes(size), 0); err != nil {
			t.Fatal(err)
		}
		if err := u.Chtimes(set, set); err != nil {
			t.Fatal(err)
		}
		log.Take()
		if err := u.Commit(); err != nil {
			t.Fatal(err)
		}
		u.Close()
		for _, r := range log.Take() {
			if strings.HasPrefix(r, "HEAD ") {
				t.Errorf("%d bytes: the commit asked the store %q", size, r)
			}
		}
		if fi, err := e.tree.Stat(name); err != nil || !fi.ModTime().Equal(set) {
			t.Errorf("%d bytes: the upload shows %v, %v; want the time set, %v", size, fi.ModTime(), err, set)
		}
	}
}

// FileSize asks for the object alone: a missing name's size is 0 whether or
// not a folder has it, so the listing Lstat needs is not made.
func TestFileSizeIsOneRequest(t *testing.T) {
	e, log := newLoggedEnv(t)
	e.put(t, "a.txt", []byte("data"))
	if err := e.tree.Mkdir("d.txt"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		size int64
		ok   bool
	}{{"a.txt", 4, true}, {"d.txt", 0, false}, {"missing.txt", 0, false}} {
		log.Take()
		size, ok := e.tree.FileSize(c.name)
		if size != c.size || ok != c.ok {
			t.Errorf("FileSize(%s) = %d, %v; want %d, %v", c.name, size, ok, c.size, c.ok)
		}
		if got := log.Take(); len(got) != 1 || !strings.HasPrefix(got[0], "HEAD ") {
			t.Errorf("FileSize(%s) asked %q; want one HEAD", c.name, got)
		}
	}
	var m storage.Memo
	tr := e.tree.WithMemo(&m).(*s3.Tree)
	m.Begin()
	defer m.End()
	if _, err := tr.Stat("a.txt"); err != nil {
		t.Fatal(err)
	}
	log.Take()
	if size, ok := tr.FileSize("a.txt"); size != 4 || !ok {
		t.Errorf("FileSize after a Stat in the span: %d, %v", size, ok)
	}
	if got := log.Take(); len(got) != 0 {
		t.Errorf("FileSize after a Stat in the same span asked %q; want nothing", got)
	}
}

// PrefetchStat asks about an upload's name and its folder at once (and,
// for the name, the object and the folder of that name at once), keeps
// the answers for the span, and does nothing outside one.
func TestPrefetchStatAsksAtOnce(t *testing.T) {
	e, log := newLoggedEnv(t)
	if err := e.tree.Mkdir("d"); err != nil {
		t.Fatal(err)
	}
	var m storage.Memo
	tr := e.tree.WithMemo(&m).(*s3.Tree)
	log.Take()
	tr.PrefetchStat("d/new.txt", "d")
	if got := log.Take(); len(got) != 0 {
		t.Errorf("outside a span PrefetchStat asked %q; want nothing (nothing would be kept)", got)
	}

	m.Begin()
	// HEAD d/new.txt, the listing of d/new.txt/, HEAD d and HEAD d/.
	log.Gather(4, 2*time.Second)
	tr.PrefetchStat("d/new.txt", "d")
	if !log.Gathered() {
		t.Errorf("PrefetchStat's requests came one after the other: %q", log.Take())
	}
	log.Take()
	if _, err := tr.Lstat("d/new.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of the new name: %v", err)
	}
	u, err := tr.Create("d/new.txt", 0) // asks whether d exists, and the name is free
	if err != nil {
		t.Fatal(err)
	}
	u.Close()
	if got := log.Take(); len(got) != 0 {
		t.Errorf("after PrefetchStat, the stat and the Create asked %q; want nothing", got)
	}
	m.End()

	// A name that exists is found as Stat finds it.
	e.put(t, "d/old.txt", []byte("data"))
	m.Begin()
	defer m.End()
	tr.PrefetchStat("d/old.txt", "d")
	log.Take()
	if fi, err := tr.Stat("d/old.txt"); err != nil || fi.Size() != 4 {
		t.Errorf("stat of an existing name after PrefetchStat: %v, %v", fi, err)
	}
	if fi, err := tr.Stat("d"); err != nil || !fi.IsDir() {
		t.Errorf("stat of the folder after PrefetchStat: %v, %v", fi, err)
	}
	if got := log.Take(); len(got) != 0 {
		t.Errorf("the stats after PrefetchStat asked %q; want nothing", got)
	}
}

// PrefetchRead learns a file's state and its first bytes with one GET: the
// stat and the open that follow, and the first chunk's reads, ask nothing
// more. A folder, a missing name and an empty object are answered as a
// stat answers them.
func TestPrefetchReadFetchesTheFirstBytesWithTheStat(t *testing.T) {
	e, log := newLoggedEnv(t)
	small, large := []byte("small"), randBytes(5*mib+7)
	e.put(t, "small.txt", small)
	e.put(t, "large.bin", large)
	e.put(t, "empty.txt", nil)
	if err := e.tree.Mkdir("dir"); err != nil {
		t.Fatal(err)
	}
	var m storage.Memo
	tr := e.tree.WithMemo(&m).(*s3.Tree)
	read := func(name string, f storage.File, want []byte) {
		t.Helper()
		got := make([]byte, len(want)+1)
		n, err := f.ReadAt(got, 0)
		if n != len(want) || !bytes.Equal(got[:n], want) || (err != nil && err != io.EOF) {
			t.Errorf("%s reads %d bytes (%v); want its %d", name, n, err, len(want))
		}
	}
	for _, c := range []struct {
		name     string
		data     []byte
		requests int // by PrefetchRead, then by Stat, Open and the reads
	}{
		{"small.txt", small, 1},
		{"large.bin", large, 3}, // the GET of the first MiB, then of the chunks after it
		{"empty.txt", nil, 2},   // a range of nothing is refused: the stat asks
	} {
		m.Begin()
		log.Take()
		tr.PrefetchRead(c.name)
		fi, err := tr.Stat(c.name)
		if err != nil || fi.Size() != int64(len(c.data)) || fi.IsDir() {
			t.Errorf("stat %s after PrefetchRead: %v, %v", c.name, fi, err)
		}
		f, err := tr.Open(c.name)
		if err != nil {
			t.Fatal(err)
		}
		read(c.name, f, c.data)
		f.Close()
		if got := log.Take(); len(got) != c.requests {
			t.Errorf("%s: %d requests %q; want %d", c.name, len(got), got, c.requests)
		}
		m.End()
	}

	// Reads across the first bytes' end, and elsewhere, read the file.
	m.Begin()
	tr.PrefetchRead("large.bin")
	f, err := tr.Open("large.bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{mib - 10, 3*mib + 5, 10, 5 * mib} {
		got := make([]byte, 100)
		n, err := f.ReadAt(got, off)
		want := large[off:min(off+100, int64(len(large)))]
		if n != len(want) || !bytes.Equal(got[:n], want) || (err != nil && err != io.EOF) {
			t.Errorf("large.bin at %d: %d bytes (%v), not the file's", off, n, err)
		}
	}
	f.Close()
	m.End()

	m.Begin()
	tr.PrefetchRead("dir")
	tr.PrefetchRead("missing.txt")
	log.Take()
	if fi, err := tr.Stat("dir"); err != nil || !fi.IsDir() {
		t.Errorf("stat of a folder after PrefetchRead: %v, %v", fi, err)
	}
	if _, err := tr.Stat("missing.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of a missing name after PrefetchRead: %v", err)
	}
	if got := log.Take(); len(got) != 0 {
		t.Errorf("the stats after PrefetchRead asked %q; want nothing", got)
	}
	m.End()

	// Outside a span, nothing is asked (nothing would be kept).
	tr.PrefetchRead("small.txt")
	if got := log.Take(); len(got) != 0 {
		t.Errorf("PrefetchRead outside a span asked %q", got)
	}
}

// countingTimes counts the reads of a Times.
type countingTimes struct {
	storage.Times
	gets atomic.Int32
}

func (c *countingTimes) Get(ctx context.Context, ref storage.TreeRef, name string) (storage.Time, bool, error) {
	c.gets.Add(1)
	return c.Times.Get(ctx, ref, name)
}

// Within a span the kept time of a name is read once (a download's OPEN
// stats the file, then opens it), and a time set in the span shows at once.
func TestATreeWithAMemoReadsAKeptTimeOnce(t *testing.T) {
	e, _ := newLoggedEnv(t)
	times := &countingTimes{Times: storagetest.NewMemTimes()}
	e.store.KeepTimes(times)
	e.put(t, "a.txt", []byte("data"))
	first, second := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := e.tree.Chtimes("a.txt", first, first); err != nil {
		t.Fatal(err)
	}
	var m storage.Memo
	tr := e.tree.WithMemo(&m)
	m.Begin()
	defer m.End()
	times.gets.Store(0)
	if fi, err := tr.Stat("a.txt"); err != nil || !fi.ModTime().Equal(first) {
		t.Fatalf("stat: %v, %v; want the time kept, %v", fi, err, first)
	}
	f, err := tr.Open("a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || !fi.ModTime().Equal(first) {
		t.Errorf("the open file: %v, %v; want the time kept", fi, err)
	}
	f.Close()
	if n := times.gets.Load(); n != 1 {
		t.Errorf("a stat and an open in one span read the kept time %d times; want 1", n)
	}
	if err := tr.Chtimes("a.txt", second, second); err != nil {
		t.Fatal(err)
	}
	if fi, err := tr.Stat("a.txt"); err != nil || !fi.ModTime().Equal(second) {
		t.Errorf("stat after a Chtimes in the span: %v, %v; want %v", fi.ModTime(), err, second)
	}
}
