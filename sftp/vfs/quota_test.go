package vfs_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// memQuota is a Quota in memory: one limit for the whole account.
type memQuota struct {
	mu       sync.Mutex
	limit    int64 // < 0: none
	used     map[string]int64
	reserved int64
	asks     int // calls of Reserve
}

func newMemQuota(limit int64) *memQuota { return &memQuota{limit: limit, used: map[string]int64{}} }

func withQuota(q vfs.Quota) option { return func(c *vfs.Config) { c.Quota = q } }

func (q *memQuota) total() int64 {
	var n int64
	for _, u := range q.used {
		n += u
	}
	return n
}

func (q *memQuota) Reserve(_ context.Context, tree string, need, want int64) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.asks++
	n := want
	if free := q.limit - q.total() - q.reserved; q.limit >= 0 && want > free {
		if need > free {
			return 0, nil
		}
		n = need
	}
	q.reserved += n
	return n, nil
}

func (q *memQuota) Settle(_ context.Context, tree string, reserved, delta int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reserved -= reserved
	q.used[tree] += delta
	return nil
}

func (q *memQuota) Move(_ context.Context, from, to string, n int64) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.used[from] -= n
	q.used[to] += n
	return true, nil
}

func (q *memQuota) Space(context.Context, string) (int64, int64, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total() + q.reserved, q.limit, q.limit >= 0, nil
}

// state is what the quota holds: used bytes of the home, and reserved.
func (q *memQuota) state() (used, reserved int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used[userID], q.reserved
}

// wantState waits for the quota to hold used and reserved: a close
// settles in the background.
func (q *memQuota) wantState(t *testing.T, what string, used, reserved int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		u, r := q.state()
		if u == used && r == reserved {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: used %d, reserved %d; want %d, %d", what, u, r, used, reserved)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

const typeSetstat, typeRemove = 9, 13

// Every write path refuses what the quota has no room for, before the data
// is accepted, with FAILURE "quota exceeded": WRITE to a new file and to an
// existing one (resume), FSETSTAT and SETSTAT extending a file (sparse
// counts at its length), and copy-data.
func TestQuotaExceededOnEveryWritePath(t *testing.T) {
	const limit = 100 << 20
	q := newMemQuota(limit)
	e := newEnv(t, withQuota(q))
	r := newRawInit(t, e.session)
	exceeded := func(what string, code uint32, msg string) {
		t.Helper()
		if code != codeFail || msg != "quota exceeded" {
			t.Errorf("%s: status %d %q; want FAILURE \"quota exceeded\"", what, code, msg)
		}
	}

	// A new upload within the quota: counted at its close.
	h := r.open(1, "a.bin", fxfWrite|fxfCreat|fxfTrunc)
	if code := r.write(2, h, 0, strings.Repeat("a", 1000)); code != codeOK {
		t.Fatalf("write: %d", code)
	}
	q.wantState(t, "during an upload", 0, 64<<20)
	r.closeHandle(3, h)
	q.wantState(t, "after the upload", 1000, 0)

	// A new upload past the quota.
	h = r.open(4, "big.bin", fxfWrite|fxfCreat|fxfTrunc)
	code, msg := r.statusOf(5, packet(typeWrite, u32(5), str(string(h)), u64(limit), str("x")))
	exceeded("WRITE past the quota", code, msg)
	r.send(packet(typeClose, u32(6), str(string(h))))
	r.status(6) // the upload is discarded: the write failed
	if exists(filepath.Join(e.home(), "big.bin")) {
		t.Error("an upload that hit the quota replaced the target")
	}
	q.wantState(t, "after a refused upload", 1000, 0)

	// Resume: an existing file opened in place, written at its end.
	h = r.open(7, "a.bin", fxfWrite)
	if code := r.write(8, h, 1000, "more"); code != codeOK {
		t.Fatalf("resume within the quota: %d", code)
	}
	code, msg = r.statusOf(9, packet(typeWrite, u32(9), str(string(h)), u64(limit-3), str("xyzw")))
	exceeded("resume past the quota", code, msg)

	// FSETSTAT extending the file (sparse: counts at its length).
	code, msg = r.statusOf(10, packet(typeFsetstat, u32(10), str(string(h)), append(u32(0x1), u64(1e12)...)))
	exceeded("FSETSTAT size 10^12", code, msg)
	r.closeHandle(11, h)
	q.wantState(t, "after the resume", 1004, 0)
	if got := mustRead(t, filepath.Join(e.home(), "a.bin")); len(got) != 1004 {
		t.Errorf("a.bin holds %d bytes, want 1004", len(got))
	}

	// SETSTAT by path: extending past the quota is refused, shrinking frees.
	attrsSize := func(n uint64) []byte { return append(u32(0x1), u64(n)...) }
	code, msg = r.statusOf(12, packet(typeSetstat, u32(12), str("a.bin"), attrsSize(1e12)))
	exceeded("SETSTAT size 10^12", code, msg)
	if code, _ := r.statusOf(13, packet(typeSetstat, u32(13), str("a.bin"), attrsSize(4))); code != codeOK {
		t.Fatalf("SETSTAT shrinking: %d", code)
	}
	q.wantState(t, "after shrinking", 4, 0)

	// copy-data past the quota; within it, counted.
	src := make([]byte, 3<<20)
	rand.Read(src)
	mustWrite(t, filepath.Join(e.home(), "src.bin"), string(src))
	q.mu.Lock()
	q.used[userID] += int64(len(src)) // as if uploaded
	q.limit = q.total() + 1<<20
	q.mu.Unlock()
	sh := r.open(14, "src.bin", fxfRead)
	dh := r.open(15, "copy.bin", fxfWrite|fxfCreat|fxfTrunc)
	code, msg = r.statusOf(16, packet(typeExtended, u32(16), str("copy-data"), str(string(sh)), u64(0), u64(0), str(string(dh)), u64(0)))
	exceeded("copy-data past the quota", code, msg)
	r.send(packet(typeClose, u32(17), str(string(dh))))
	r.status(17)
	dh = r.open(18, "copy.bin", fxfWrite|fxfCreat|fxfTrunc)
	if code := r.copyData(19, sh, 0, 1000, dh, 0); code != codeOK {
		t.Fatalf("copy-data within the quota: %d", code)
	}
	r.closeHandle(20, dh)
	q.wantState(t, "after a copy", 4+int64(len(src))+1000, 0)

	// Removing frees.
	if code, _ := r.statusOf(21, packet(typeRemove, u32(21), str("copy.bin"))); code != codeOK {
		t.Fatalf("remove: %d", code)
	}
	q.wantState(t, "after a removal", 4+int64(len(src)), 0)
}

// A connection dropped in the middle of an upload leaves nothing counted
// and nothing reserved; an upload that finished is counted once.
func TestQuotaAfterKilledUpload(t *testing.T) {
	q := newMemQuota(-1)
	e := newEnv(t, withQuota(q))
	e.killUpload("killed.bin", 5<<20)
	q.wantState(t, "after a killed upload", 0, 0)
	if exists(filepath.Join(e.home(), "killed.bin")) {
		t.Error("the killed upload is in place")
	}
	e.connect()
	if err := e.put("done.bin", strings.Repeat("d", 3000)); err != nil {
		t.Fatal(err)
	}
	q.wantState(t, "after an upload", 3000, 0)
	if err := e.put("done.bin", strings.Repeat("d", 1000)); err != nil { // replaces: 2000 freed
		t.Fatal(err)
	}
	q.wantState(t, "after replacing it", 1000, 0)
}

// killUpload writes n bytes to a new upload of name and drops the
// connection before the upload's close.
func (e *env) killUpload(name string, n int) {
	e.t.Helper()
	f, err := e.client.Create(name)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, n)); err != nil {
		e.t.Fatal(err)
	}
	e.conn.Close()
	if err := <-e.served; err != nil {
		e.t.Fatalf("Serve: %v", err)
	}
	e.served = nil
}

// statvfs (df) shows the quota and what is left of it, not the host's disk.
func TestStatvfsShowsTheQuota(t *testing.T) {
	q := newMemQuota(10 << 30)
	q.used[userID] = 3 << 30
	e := newEnv(t, withQuota(q))
	st, err := e.client.StatVFS("/My Files")
	if err != nil {
		t.Fatal(err)
	}
	if total, free := st.TotalSpace(), st.FreeSpace(); total != 10<<30 || free != 7<<30 || st.Favail != 0 {
		t.Errorf("statvfs: total %d, free %d; want %d, %d", total, free, 10<<30, 7<<30)
	}
}

// posix-rename of a file onto itself, by its own path or another of its
// paths, changes nothing: it succeeds (as in OpenSSH), the file stays, and
// the quota is not freed of it (that freed room a user could fill again).
func TestRenameOntoItselfFreesNothing(t *testing.T) {
	q := newMemQuota(-1)
	e := newEnv(t, withQuota(q))
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Plans", Rights: vfs.AllRights, InMyFiles: true})
	if err := e.put("/My Files/f.bin", strings.Repeat("f", 3000)); err != nil {
		t.Fatal(err)
	}
	if err := e.put("/My Files/Plans/g.bin", strings.Repeat("g", 2000)); err != nil {
		t.Fatal(err)
	}
	q.wantState(t, "after the uploads", 3000, 0)
	usedInFolder := func() int64 {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.used[folderA]
	}
	if n := usedInFolder(); n != 2000 {
		t.Fatalf("the folder's usage is %d; want 2000", n)
	}
	for _, p := range [][2]string{
		{"/My Files/f.bin", "/My Files/f.bin"},
		{"/My Files/f.bin", "/My Files/./f.bin"},
		{"/My Files/Plans/g.bin", mount + "/Plans/g.bin"},
	} {
		if err := e.client.PosixRename(p[0], p[1]); err != nil {
			t.Errorf("posix-rename %s onto %s: %v", p[0], p[1], err)
		}
	}
	if err := e.client.Rename("/My Files/f.bin", "/My Files/f.bin"); statusCode(err) == "" {
		t.Error("a plain rename onto the file itself succeeded; it finds its target there")
	}
	// What is not there is not found, onto itself as anywhere.
	for _, rename := range []func(string, string) error{e.client.PosixRename, e.client.Rename} {
		if err := rename("/My Files/nope.bin", "/My Files/nope.bin"); statusCode(err) != "no such file" {
			t.Errorf("renaming a missing file onto itself: %v; want no such file", err)
		}
	}
	q.wantState(t, "after renaming the file onto itself", 3000, 0)
	if n := usedInFolder(); n != 2000 {
		t.Errorf("after renaming the folder's file onto itself, its usage is %d; want 2000", n)
	}
	if got := mustRead(t, filepath.Join(e.home(), "f.bin")); len(got) != 3000 {
		t.Errorf("f.bin holds %d bytes, want 3000", len(got))
	}
	if got := mustRead(t, filepath.Join(e.folder(folderA), "g.bin")); len(got) != 2000 {
		t.Errorf("g.bin holds %d bytes, want 2000", len(got))
	}
}
