package s3_test

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/storage/storagetest"
)

var setTime = time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)

// timesEnv is an env whose store keeps times in memory.
func timesEnv(t *testing.T) (*env, *storagetest.MemTimes) {
	e := newEnv(t, s3.Config{})
	times := storagetest.NewMemTimes()
	e.store.KeepTimes(times)
	return e, times
}

// setTime sets name's time to setTime.
func (e *env) setTime(t *testing.T, name string) {
	t.Helper()
	if err := e.tree.Chtimes(name, setTime, setTime); err != nil {
		t.Fatal(err)
	}
}

func (e *env) mtime(t *testing.T, name string) time.Time {
	t.Helper()
	fi, err := e.tree.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// A file uploaded in parts is copied in parts when renamed, and gets
// another ETag: its time follows it all the same.
func TestTimeOfAMultipartObjectFollowsItsRename(t *testing.T) {
	e, _ := timesEnv(t)
	e.put(t, "big", randBytes(2*s3.MinPartSize+1))
	e.setTime(t, "big")
	if err := e.tree.Move("big", e.tree, "moved", false); err != nil {
		t.Fatal(err)
	}
	if got := e.mtime(t, "moved"); !got.Equal(setTime) {
		t.Errorf("renamed file's time %v, want %v", got, setTime)
	}
}

// A time set on a file written again since does not move with its folder:
// the file shows when it was written.
func TestARewrittenFileLosesItsTimeInAFolderRename(t *testing.T) {
	e, times := timesEnv(t)
	if err := e.tree.Mkdir("d"); err != nil {
		t.Fatal(err)
	}
	e.put(t, "d/f", []byte("one"))
	e.put(t, "d/g", []byte("g"))
	for _, name := range []string{"d/f", "d/g"} {
		e.setTime(t, name)
	}
	e.put(t, "d/f", []byte("two"))
	if err := e.tree.Move("d", e.tree, "e", false); err != nil {
		t.Fatal(err)
	}
	if got := e.mtime(t, "e/f"); got.Equal(setTime) {
		t.Error("the rewritten file got the time set before it was written")
	}
	if got := e.mtime(t, "e/g"); !got.Equal(setTime) {
		t.Errorf("e/g's time %v, want %v", got, setTime)
	}
	if n := times.Count(); n != 1 {
		t.Errorf("%d times kept after the rename, want 1 (e/g's)", n)
	}
}

// Without its times, the storage still works: listings and stats show
// when objects were written, and a time that cannot be kept is an error
// the client sees.
func TestTimesThatCannotBeReached(t *testing.T) {
	e, times := timesEnv(t)
	e.put(t, "f", []byte("f"))
	e.setTime(t, "f")
	times.Broken = true
	before := time.Now().Add(-time.Minute)
	if got := e.mtime(t, "f"); got.Before(before) {
		t.Errorf("time %v, want when it was written", got)
	}
	d, err := e.tree.Open(".")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if fis, err := d.Readdir(-1); err != nil || len(fis) != 1 {
		t.Errorf("listing: %d entries, %v", len(fis), err)
	}
	if err := e.tree.Chtimes("f", setTime, setTime); !errors.Is(err, storagetest.ErrBroken) {
		t.Errorf("Chtimes = %v, want the times' error", err)
	}
	if err := e.tree.Move("f", e.tree, "g", false); !errors.Is(err, storagetest.ErrBroken) {
		t.Errorf("Move = %v, want the times' error (the file would lose its time)", err)
	}
	if _, err := e.tree.Stat("f"); err != nil {
		t.Errorf("the refused rename moved the file: %v", err)
	}
}

// Removing a home forgets the times kept in it.
func TestRemovingATreeForgetsItsTimes(t *testing.T) {
	e, times := timesEnv(t)
	e.put(t, "f", []byte("f"))
	e.setTime(t, "f")
	if err := e.store.RemoveUserHome(acct, user); err != nil {
		t.Fatal(err)
	}
	if n := times.Count(); n != 0 {
		t.Errorf("%d times kept after the home was removed", n)
	}
	if _, err := e.tree.Stat("f"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat after removal: %v", err)
	}
}

// A file renamed over one with a time kept shows its own time, even with
// the same bytes (and so the same ETag) as the file it replaced.
func TestARenameOverAFileDropsItsTime(t *testing.T) {
	e, _ := timesEnv(t)
	e.put(t, "old", []byte("same"))
	e.setTime(t, "old")
	e.put(t, "new", []byte("same"))
	if err := e.tree.Move("new", e.tree, "old", true); err != nil {
		t.Fatal(err)
	}
	if got := e.mtime(t, "old"); got.Equal(setTime) {
		t.Error("the file renamed over another shows the other's time")
	}
}

// A rename whose times cannot be carried over (the database went away
// after the rename began) still happened: it succeeds, and the file shows
// when it was written rather than a time from another file.
func TestARenameOutlivesItsTimes(t *testing.T) {
	e, times := timesEnv(t)
	e.put(t, "f", []byte("f"))
	e.setTime(t, "f")
	times.ReadOnly = true
	if err := e.tree.Move("f", e.tree, "g", false); err != nil {
		t.Fatalf("Move = %v, want the rename done", err)
	}
	if _, err := e.tree.Stat("f"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("f after the rename: %v", err)
	}
	if got := e.mtime(t, "g"); got.Equal(setTime) {
		t.Errorf("g shows a time that was never carried over")
	}
}

// Uploading a new file costs the times nothing; writing over a file
// forgets the time kept for it (its bytes, and so its ETag, may be the
// same).
func TestOnlyAnOverwriteAsksTheTimes(t *testing.T) {
	e, times := timesEnv(t)
	e.put(t, "new", []byte("x"))
	if n := times.Writes(); n != 0 {
		t.Errorf("a new file's upload wrote the times %d times, want none", n)
	}
	e.put(t, "new", []byte("x"))
	if n := times.Writes(); n != 1 {
		t.Errorf("an overwrite wrote the times %d times, want 1 (forgetting)", n)
	}
}

// The top of a tree is its key prefix, with no time of its own: a time set
// on it is accepted and not kept.
func TestATimeOnTheTopIsNotKept(t *testing.T) {
	e, times := timesEnv(t)
	e.setTime(t, ".")
	if n := times.Count(); n != 0 {
		t.Errorf("%d times kept for the top, want none", n)
	}
}
