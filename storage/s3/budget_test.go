package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/storage/s3"
)

const otherAcct = "5d2e8f10-3a4b-4c5d-8e6f-708192a3b4c5"

// waitMemoryFree waits for the transfers' memory to be given back: GETs
// dropped while running give theirs back as they end.
func waitMemoryFree(t *testing.T, st *s3.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		node, _ := s3.MemoryInUse(st, acct)
		if node == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of the memory budget still held after every file was closed", node)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Many downloads open at once hold no more than the node's memory for
// transfers: each would fetch 16 MiB ahead of its first read, 512 MiB for
// these 32. Over the budget a read fetches only what it asks for, and
// every read gets the right bytes.
func TestOpenDownloadsStayWithinTheMemoryBudget(t *testing.T) {
	const budget = 16 * mib
	e := newEnv(t, s3.Config{Memory: budget, MemoryPerAccount: budget})
	data := randBytes(16 * mib)
	e.put(t, "big", data)

	before := anonMemory(t)
	var files []storage.File
	buf := make([]byte, 32<<10)
	for range 32 {
		f, err := e.tree.Open("big")
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		if n, err := f.ReadAt(buf, 0); err != nil || !bytes.Equal(buf[:n], data[:len(buf)]) {
			t.Fatalf("first read: %d bytes, %v", n, err)
		}
	}
	if node, _ := s3.MemoryInUse(e.store, acct); node > budget {
		t.Errorf("downloads hold %d MiB of a %d MiB budget", node/mib, budget/mib)
	}
	// Let the GETs started ahead end, then count what the open files keep.
	time.Sleep(500 * time.Millisecond)
	if grew := anonMemory(t) - before; grew > budget+16*mib {
		t.Errorf("32 open downloads keep %d MiB of memory; the budget is %d MiB", grew/mib, budget/mib)
	}

	// The first file took the budget; another reads the whole file over
	// it, a read at a time, and gets every byte.
	f := files[len(files)-1]
	var got []byte
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		got = append(got, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("a download over the budget read other bytes than the file's")
	}
	for _, f := range files {
		f.Close()
	}
	waitMemoryFree(t, e.store)
}

// The first bytes an open fetches with its stat (PrefetchRead) and keeps
// for the file's first reads count in the budget: a client that opens many
// files and reads none holds no more than the budget (before, 1 MiB per
// open file, unbounded). An open over the budget keeps nothing, and its
// reads still get the file's bytes.
func TestPrefetchedFirstBytesStayWithinTheMemoryBudget(t *testing.T) {
	const budget = 16 * mib
	e := newEnv(t, s3.Config{Memory: budget, MemoryPerAccount: budget})
	data := randBytes(8 * mib)
	e.put(t, "big", data)
	var m storage.Memo
	tr := e.tree.WithMemo(&m)

	// The first bytes are on the heap: its live bytes say what the files
	// keep (the race detector's shadow memory would blur RssAnon).
	before := liveHeap()
	var files []storage.File
	for range 64 {
		m.Begin() // one SFTP OPEN
		tr.(storage.ReadPrefetcher).PrefetchRead("big")
		f, err := tr.Open("big")
		m.End()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if node, _ := s3.MemoryInUse(e.store, acct); node > budget {
		t.Errorf("64 open files hold %d MiB of a %d MiB budget", node/mib, budget/mib)
	}
	if grew := liveHeap() - before; grew > budget+4*mib {
		t.Errorf("64 files opened and not read keep %d MiB on the heap; the budget is %d MiB", grew/mib, budget/mib)
	}
	// The last one opened over the budget: it reads the file all the same.
	buf := make([]byte, 32<<10)
	f := files[len(files)-1]
	for _, off := range []int64{0, mib - 100, 5 * mib} {
		if n, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf[:n], data[off:off+int64(len(buf))]) {
			t.Fatalf("read at %d over the budget: %d bytes, %v", off, n, err)
		}
	}
	for _, f := range files {
		f.Close()
	}
	waitMemoryFree(t, e.store)
}

// holdAccountShare starts a store with room for one part per upload, two
// on the node and one per account, and an upload "a" of acct that holds the
// account's share (its first MiB, data, written).
func holdAccountShare(t *testing.T, wait time.Duration) (*env, storage.Upload, []byte) {
	t.Helper()
	e := newEnv(t, s3.Config{PartsInFlight: 1, Memory: 2 * s3.MinPartSize, MemoryPerAccount: s3.MinPartSize, MemoryWait: wait})
	data := randBytes(mib)
	a, err := e.tree.Create("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	return e, a, data
}

// An upload waiting for memory on a tree whose session is gone
// (storage.Unheard) fails at once, as a cancellation, keeps nothing, and
// holds no memory afterwards.
func TestAWaitForMemoryEndsWhenNobodyHears(t *testing.T) {
	e, a, data := holdAccountShare(t, time.Minute)
	gone := make(chan struct{})
	b, err := storage.Unheard(e.tree, gone).Create("b", 0)
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := b.WriteAt(data, 0)
		wrote <- err
	}()
	time.Sleep(100 * time.Millisecond)
	close(gone)
	select {
	case err := <-wrote:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the write after its session went: %v, want a cancellation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write still waited for memory 5 s after its session went")
	}
	b.Close()
	if _, err := e.tree.Stat("b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the upload whose session went left a file: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitMemoryFree(t, e.store)
}

// An upload that finds no memory for a part waits for it: it goes on once
// another upload gives its part back, and fails with a clear error, keeping
// nothing, when none is given back in time. One account cannot take
// another's share.
func TestUploadsWaitForMemoryThenFailBusy(t *testing.T) {
	e, a, data := holdAccountShare(t, 300*time.Millisecond)
	// The account's share is taken: another upload of it waits, then fails.
	b, err := e.tree.Create("b", 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.WriteAt(data, 0)
	if !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("write over the account's memory: %v, want storage.ErrBusy", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("the write failed after %v, before the wait of 300ms", waited)
	}
	b.Close()
	if _, err := e.tree.Stat("b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed upload left a file: %v", err)
	}

	// Another account's user uploads meanwhile: the node has room.
	other, err := e.store.UserHome(otherAcct, user)
	if err != nil {
		t.Fatal(err)
	}
	c, err := other.Create("c", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteAt(data, 0); err != nil {
		t.Fatalf("another account's upload: %v", err)
	}
	if err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// An upload waiting when the part is given back goes on.
	s3.SetMemoryWait(e.store, 10*time.Second)
	d, err := e.tree.Create("d", 0)
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := d.WriteAt(data, 0)
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("the write did not wait for memory: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := <-wrote; err != nil {
		t.Fatalf("the waiting write: %v", err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if got := e.get(t, "d"); !bytes.Equal(got, data) {
		t.Error("the upload that waited stored other bytes")
	}
	waitMemoryFree(t, e.store)
}

func TestMemorySettings(t *testing.T) {
	c, err := s3.ParseURL("s3://b/p?memory=2GiB&memory_per_account=512MiB&memory_wait=5s")
	if err != nil {
		t.Fatal(err)
	}
	if c.Memory != 2<<30 || c.MemoryPerAccount != 512*mib || c.MemoryWait != 5*time.Second {
		t.Errorf("memory %d, per account %d, wait %v", c.Memory, c.MemoryPerAccount, c.MemoryWait)
	}
	if c, err = s3.ParseURL("s3://b/p"); err != nil || c.Memory != s3.DefaultMemory || c.MemoryPerAccount != s3.DefaultMemory/4 || c.MemoryWait != s3.DefaultMemoryWait {
		t.Errorf("defaults: memory %d, per account %d, wait %v, %v", c.Memory, c.MemoryPerAccount, c.MemoryWait, err)
	}
	if c, err = s3.ParseURL("s3://b/p?memory_wait=0s"); err != nil || c.MemoryWait >= 0 {
		t.Errorf("memory_wait=0s: %v, %v; want no wait (negative), not the default", c.MemoryWait, err)
	}
	// Large parts: room for two uploads on the node, one per account.
	if c, err = s3.ParseURL("s3://b/p?part_size=64MiB&parts_in_flight=16"); err != nil || c.Memory != 2<<30 || c.MemoryPerAccount != 1<<30 {
		t.Errorf("defaults with large parts: memory %d, per account %d, %v", c.Memory, c.MemoryPerAccount, err)
	}
	// In a container: half of its memory, and never under two uploads.
	for _, c := range []struct {
		container, want int64
	}{{0, s3.DefaultMemory}, {8 << 30, s3.DefaultMemory}, {1 << 30, 512 * mib}, {96 * mib, 64 * mib}} {
		if got, err := s3.ParseURLWithin("s3://b/p", c.container); err != nil || got.Memory != c.want || got.MemoryPerAccount != max(c.want/4, 32*mib) {
			t.Errorf("in a container of %d: memory %d, per account %d (%v); want %d", c.container, got.Memory, got.MemoryPerAccount, err, c.want)
		}
	}
	if c, err = s3.ParseURLWithin("s3://b/p?memory=2GiB", 1<<30); err != nil || c.Memory != 2<<30 {
		t.Errorf("memory given in a container of 1 GiB: %d, %v; want what was given", c.Memory, err)
	}
	// A share given over half the container: the node's memory is
	// raised to it, rather than the start failing only in a container.
	if c, err = s3.ParseURLWithin("s3://b/p?memory_per_account=768MiB", 1<<30); err != nil || c.Memory != 768*mib || c.MemoryPerAccount != 768*mib {
		t.Errorf("a share of 768 MiB in a container of 1 GiB: memory %d, per account %d, %v; want both 768 MiB", c.Memory, c.MemoryPerAccount, err)
	}
	// What the memory would be in a larger container: the default follows
	// it, a memory given does not.
	if c, err = s3.ParseURLWithin("s3://b/p", 256*mib); err != nil || c.MemoryIn(512*mib) != 256*mib || c.MemoryIn(0) != s3.DefaultMemory {
		t.Errorf("the default in other containers: %d, %d, %v", c.MemoryIn(512*mib), c.MemoryIn(0), err)
	}
	if c, err = s3.ParseURLWithin("s3://b/p?memory=100MiB", 256*mib); err != nil || c.MemoryIn(1<<30) != 100*mib {
		t.Errorf("memory given, in another container: %d, %v; want what was given", c.MemoryIn(1<<30), err)
	}
	for _, bad := range []string{
		"s3://b/p?memory=16MiB",                        // less than one upload (32 MiB)
		"s3://b/p?memory_per_account=8MiB",             // the same, for an account
		"s3://b/p?memory=1GiB&memory_per_account=2GiB", // more than the node's
		"s3://b/p?memory=lots",
		"s3://b/p?memory_wait=soon",
	} {
		if _, err := s3.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) succeeded", bad)
		}
	}
}

// liveHeap is what the Go heap holds live after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// anonMemory is the process's anonymous resident memory (heap and mapped
// buffers) after a collection that returns freed memory to the system.
func anonMemory(t *testing.T) int64 {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no RssAnon in /proc/self/status")
	return 0
}
