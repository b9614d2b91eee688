package vfs_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
)

const mount = "/Projects Shared With Me"

func TestJailedUserSeesOnlySharedFolders(t *testing.T) {
	skipOnS3(t, "the traps are symbolic links planted on the disk; objects have none")
	e := newEnv(t, jailed)
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Shared", Rights: vfs.AllRights})
	folder := e.folder(folderA)
	shared := mount + "/Shared"

	if wd, err := e.client.Getwd(); err != nil || wd != mount {
		t.Fatalf("Getwd = %q, %v; want %s", wd, err, mount)
	}
	if infos, err := e.client.ReadDir("/"); err != nil || !slices.Equal(names(infos), []string{"Projects Shared With Me"}) {
		t.Fatalf("ls / = %q, %v", names(infos), err)
	}
	if infos, err := e.client.ReadDir("."); err != nil || !slices.Equal(names(infos), []string{"Shared"}) {
		t.Fatalf("ls . = %q, %v", names(infos), err)
	}
	if _, err := e.client.Stat("/My Files"); statusCode(err) != "no such file" {
		t.Errorf("stat /My Files: %v", err)
	}
	if err := e.client.Mkdir("/My Files"); statusCode(err) != "permission denied" {
		t.Errorf("mkdir /My Files: %v; want permission denied, as for any name in /", err)
	}
	if homeMade(e) {
		t.Fatal("a home was created for a jailed user")
	}
	if err := e.put(shared+"/in.txt", "ok"); err != nil {
		t.Fatalf("put into the shared folder: %v", err)
	}

	// A home left on disk (the user was jailed later) stays out of reach.
	mustWrite(t, filepath.Join(e.home(), "home.txt"), secret+" home")
	e.plantTraps(folder)
	before := snapshot(t, e.dir, folder)
	paths := append(hostilePaths(shared, e.dir),
		"/My Files",
		"/My Files/home.txt",
		"My Files/home.txt",
		"../My Files/home.txt",
		mount+"/../My Files/home.txt",
		shared+"/../../My Files/home.txt",
		`..\My Files\home.txt`,
		"/./My Files/./home.txt",
		"//My Files//home.txt",
		"/My Files/",
	)
	for _, p := range paths {
		e.plantTraps(folder)
		e.attack(p, shared)
		if _, err := e.client.Stat(p); err == nil && p != "/" && !isUnder(p, shared) {
			if got, _ := e.client.RealPath(p); got != "/" && got != mount && !isUnder(got, shared) {
				t.Errorf("jailed user can stat %q (%s)", p, got)
			}
		}
	}
	if after := snapshot(t, e.dir, folder); !sameSnapshot(before, after) {
		t.Errorf("something outside the shared folder changed:\n%s", diffSnapshot(before, after))
	}
}

func isUnder(p, dir string) bool { return len(p) > len(dir) && p[:len(dir)+1] == dir+"/" }

// resetFolder lays out a folder as each rights case expects it. It keeps
// the folder's own directory, which the session holds open.
func resetFolder(t *testing.T, dir string) {
	t.Helper()
	entries, err := readDirPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(dir, "f.txt"), "data")
	mustMkdir(t, filepath.Join(dir, "sub"))
}

func TestSharedFolderRightsMatrix(t *testing.T) {
	skipOnS3(t, "it compares snapshots of the folder on the disk; the rights checks are the session's, the same on every storage")
	e := newEnv(t)
	dir := e.folder(folderA)
	p := mount + "/Project"
	ops := []struct {
		name string
		need vfs.Rights
		do   func() error
	}{
		{"ls", vfs.List, func() error { _, err := e.client.ReadDir(p); return err }},
		{"get", vfs.Download, func() error { _, err := e.get(p + "/f.txt"); return err }},
		{"put new", vfs.Upload, func() error { return e.put(p+"/new.txt", "n") }},
		{"put over", vfs.Upload, func() error { return e.put(p+"/f.txt", "n") }},
		{"resume", vfs.Upload, func() error {
			f, err := e.client.OpenFile(p+"/f.txt", os.O_WRONLY|os.O_APPEND)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt([]byte("more"), 4); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}},
		{"setstat", vfs.Upload, func() error { return e.client.Chtimes(p+"/f.txt", time.Unix(1, 0), time.Unix(1, 0)) }},
		{"mkdir", vfs.Mkdir, func() error { return e.client.Mkdir(p + "/newdir") }},
		{"rm", vfs.Delete, func() error { return e.client.Remove(p + "/f.txt") }},
		{"rmdir", vfs.Delete, func() error { return e.client.RemoveDirectory(p + "/sub") }},
		{"rename", vfs.Rename, func() error { return e.client.Rename(p+"/f.txt", p+"/g.txt") }},
		{"posix-rename", vfs.Rename, func() error { return e.client.PosixRename(p+"/f.txt", p+"/g.txt") }},
	}
	for _, op := range ops {
		for _, rights := range []vfs.Rights{op.need, vfs.AllRights &^ op.need, vfs.AllRights, 0} {
			resetFolder(t, dir)
			e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Project", Rights: rights})
			e.clock.Advance(2 * time.Second)
			before := snapshot(t, dir)
			err := op.do()
			if rights.Has(op.need) {
				if err != nil {
					t.Errorf("%s with %v: %v; want success", op.name, rights, err)
				}
				continue
			}
			if statusCode(err) != "permission denied" {
				t.Errorf("%s with %v: %v; want permission denied", op.name, rights, err)
			}
			if after := snapshot(t, dir); !sameSnapshot(before, after) {
				t.Errorf("%s with %v was refused but changed the folder:\n%s", op.name, rights, diffSnapshot(before, after))
			}
		}
	}

	// stat needs List or Download.
	for rights, want := range map[vfs.Rights]string{vfs.List: "ok", vfs.Download: "ok", vfs.AllRights &^ (vfs.List | vfs.Download): "permission denied"} {
		resetFolder(t, dir)
		e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Project", Rights: rights})
		e.clock.Advance(2 * time.Second)
		if _, err := e.client.Stat(p + "/f.txt"); statusCode(err) != want {
			t.Errorf("stat with %v: %v; want %s", rights, err, want)
		}
	}

	// Replacing a file by posix-rename also deletes it: it needs Delete.
	resetFolder(t, dir)
	mustWrite(t, filepath.Join(dir, "g.txt"), "keep")
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Project", Rights: vfs.AllRights &^ vfs.Delete})
	e.clock.Advance(2 * time.Second)
	if err := e.client.PosixRename(p+"/f.txt", p+"/g.txt"); statusCode(err) != "permission denied" {
		t.Errorf("posix-rename over a file without Delete: %v", err)
	}
	if got := mustRead(t, filepath.Join(dir, "g.txt")); got != "keep" {
		t.Errorf("target replaced: %q", got)
	}

	// The shared folder itself is a mount point, whatever the rights.
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Project", Rights: vfs.AllRights})
	e.clock.Advance(2 * time.Second)
	for name, do := range map[string]func() error{
		"rmdir folder":       func() error { return e.client.RemoveDirectory(p) },
		"rename folder":      func() error { return e.client.Rename(p, mount+"/Other") },
		"rename into mount":  func() error { return e.client.Rename(p+"/f.txt", mount+"/f.txt") },
		"chtimes folder":     func() error { return e.client.Chtimes(p, time.Unix(1, 0), time.Unix(1, 0)) },
		"put at mount point": func() error { return e.put(mount+"/x.txt", "x") },
	} {
		if err := do(); statusCode(err) != "permission denied" {
			t.Errorf("%s: %v; want permission denied", name, err)
		}
	}
}

func TestRenameAcrossFolders(t *testing.T) {
	skipOnS3(t, "it resets and compares the folders on the disk; the rights checks are the session's, the same on every storage")
	e := newEnv(t)
	dirA, dirB := e.folder(folderA), e.folder(folderB)
	cases := []struct {
		a, b vfs.Rights
		ok   bool
	}{
		{vfs.AllRights, vfs.AllRights, true},
		{vfs.Rename, vfs.Rename, true},
		{vfs.AllRights &^ vfs.Rename, vfs.AllRights, false},
		{vfs.AllRights, vfs.AllRights &^ vfs.Rename, false},
	}
	for _, tc := range cases {
		resetFolder(t, dirA)
		resetFolder(t, dirB)
		e.shares.set(
			vfs.SharedFolder{ID: folderA, Name: "A", Rights: tc.a},
			vfs.SharedFolder{ID: folderB, Name: "B", Rights: tc.b},
		)
		e.clock.Advance(2 * time.Second)
		err := e.client.Rename(mount+"/A/f.txt", mount+"/B/moved.txt")
		moved := exists(filepath.Join(dirB, "moved.txt")) && !exists(filepath.Join(dirA, "f.txt"))
		if tc.ok != (err == nil) || tc.ok != moved {
			t.Errorf("A=%v B=%v: err %v, moved %v; want ok=%v", tc.a, tc.b, err, moved, tc.ok)
		}
	}
	// From My Files into a folder and back.
	mustWrite(t, filepath.Join(e.home(), "mine.txt"), "m")
	if err := e.client.Rename("/My Files/mine.txt", mount+"/A/mine.txt"); err != nil {
		t.Fatalf("move into folder: %v", err)
	}
	if err := e.client.Rename(mount+"/A/mine.txt", "/My Files/back.txt"); err != nil {
		t.Fatalf("move back: %v", err)
	}
	if got := mustRead(t, filepath.Join(e.home(), "back.txt")); got != "m" {
		t.Errorf("moved content %q", got)
	}
}

func TestRightsChangeReachesOpenSession(t *testing.T) {
	e := newEnv(t)
	dir := e.folder(folderA)
	p := mount + "/Project/new.txt"
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Project", Rights: vfs.List})
	if err := e.put(p, "x"); statusCode(err) != "permission denied" {
		t.Fatalf("put with vfs.List only: %v", err)
	}
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Project", Rights: vfs.List | vfs.Upload})
	e.clock.Advance(500 * time.Millisecond)
	if err := e.put(p, "x"); statusCode(err) != "permission denied" {
		t.Errorf("put within the cache time: %v; want the cached rights", err)
	}
	e.clock.Advance(600 * time.Millisecond)
	if err := e.put(p, "x"); err != nil {
		t.Fatalf("put after the rights change: %v", err)
	}
	if !exists(filepath.Join(dir, "new.txt")) {
		t.Fatal("upload missing")
	}

	// Unsharing takes the folder away.
	e.shares.set()
	e.clock.Advance(2 * time.Second)
	if _, err := e.client.Stat(mount + "/Project"); statusCode(err) != "no such file" {
		t.Errorf("stat after unsharing: %v", err)
	}
	if infos, err := e.client.ReadDir(mount); err != nil || len(infos) != 0 {
		t.Errorf("ls mount after unsharing = %q, %v", names(infos), err)
	}
}

func TestSharedFolderNameClashes(t *testing.T) {
	const folderC, folderD, folderE = "c3c3c3c3-0000-4000-8000-000000000003",
		"d4d4d4d4-0000-4000-8000-000000000004", "e5e5e5e5-0000-4000-8000-000000000005"
	in := []vfs.SharedFolder{
		{ID: folderB, Name: "Reports", Rights: vfs.List | vfs.Download},
		{ID: folderA, Name: "Reports", Rights: vfs.List | vfs.Download},
		{ID: folderC, Name: "Reports (2)", Rights: vfs.List | vfs.Download},
		{ID: folderD, Name: `a/b\c`, Rights: vfs.List | vfs.Download},
		{ID: folderE, Name: "..", Rights: vfs.List | vfs.Download},
	}
	want := map[string]string{
		"Reports":     folderA, // the lower ID keeps the name
		"Reports (2)": folderC, // a real name is never taken over
		"Reports (3)": folderB,
		"a_b_c":       folderD,
		"Folder":      folderE,
	}
	for _, order := range [][]vfs.SharedFolder{in, {in[4], in[3], in[2], in[1], in[0]}} {
		e := newEnv(t)
		for id := range map[string]bool{folderA: true, folderB: true, folderC: true, folderD: true, folderE: true} {
			mustWrite(t, filepath.Join(e.folder(id), "id.txt"), id)
		}
		e.shares.set(order...)
		infos, err := e.client.ReadDir(mount)
		if err != nil {
			t.Fatal(err)
		}
		wantNames := []string{"Folder", "Reports", "Reports (2)", "Reports (3)", "a_b_c"}
		if got := names(infos); !slices.Equal(got, wantNames) {
			t.Fatalf("ls mount = %q; want %q", got, wantNames)
		}
		for name, id := range want {
			if got, err := e.get(mount + "/" + name + "/id.txt"); err != nil || got != id {
				t.Errorf("%s holds %q, %v; want folder %s", name, got, err, id)
			}
		}
	}
}

func TestSharesFailure(t *testing.T) {
	e := newEnv(t)
	e.shares.mu.Lock()
	e.shares.err = os.ErrDeadlineExceeded
	e.shares.mu.Unlock()
	_, err := e.client.ReadDir(mount)
	if statusCode(err) != "failure" {
		t.Fatalf("ls mount while shares fail: %v; want failure", err)
	}
	// My Files does not depend on the shares.
	if err := e.put("/My Files/x.txt", "x"); err != nil {
		t.Fatalf("put in My Files while shares fail: %v", err)
	}
}

func TestUploadOnlyFolder(t *testing.T) {
	e := newEnv(t)
	dir := e.folder(folderA)
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Drop", Rights: vfs.Upload})
	p := mount + "/Drop/in.txt"
	f, err := e.client.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("dropped")); err != nil {
		t.Fatal(err)
	}
	// A client may check its own upload, though it may not look around.
	if fi, err := f.Stat(); err != nil || fi.Size() != 7 {
		t.Errorf("fstat of own upload = %v, %v", fi, err)
	}
	buf := make([]byte, 4)
	if _, err := f.ReadAt(buf, 0); statusCode(err) != "permission denied" {
		t.Errorf("reading back without Download: %v; want permission denied", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(dir, "in.txt")); got != "dropped" {
		t.Errorf("stored %q", got)
	}
	if _, err := e.client.Stat(p); statusCode(err) != "permission denied" {
		t.Errorf("stat after the upload: %v; want permission denied", err)
	}
}

// A change signalled through Config.SharesChanged reaches the open session
// at its next operation, however young its copy of the shared folders: the
// clock does not move here, so the cache time cannot explain the refusal.
// A change signalled while the session was fetching the folders (the fetch
// may have read the rights from before it) makes the next operation fetch
// again.
func TestSharesChangedReachesOpenSessionAtOnce(t *testing.T) {
	e := newEnv(t, func(c *vfs.Config) { c.SharesTTL = time.Hour })
	changed := e.changed
	mustWrite(t, filepath.Join(e.folder(folderA), "a.txt"), "a")
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Project", Rights: vfs.List | vfs.Download})
	if got, err := e.get(mount + "/Project/a.txt"); err != nil || got != "a" {
		t.Fatalf("get in the shared folder = %q, %v", got, err)
	}
	calls := e.shares.count()
	e.shares.set()
	if _, err := e.client.Stat(mount + "/Project/a.txt"); err != nil {
		t.Fatalf("stat before any change is signalled: %v; want the cached rights", err)
	}
	if n := e.shares.count(); n != calls {
		t.Fatalf("%d fetches without a change signalled; want the cached copy used", n-calls)
	}
	changed.Bump()
	if _, err := e.client.Stat(mount + "/Project/a.txt"); statusCode(err) != "no such file" {
		t.Fatalf("stat after the share's removal was signalled: %v; want no such file", err)
	}

	// Shared again; the change is signalled while a fetch runs, which
	// brings the folders as they were before it.
	e.shares.mu.Lock()
	e.shares.folders = []vfs.SharedFolder{{ID: folderA, Name: "Project", Rights: vfs.List | vfs.Download}}
	e.shares.fetched = func() {
		changed.Bump()
		e.shares.fetched = nil
		e.shares.folders = []vfs.SharedFolder{}
	}
	e.shares.mu.Unlock()
	changed.Bump()
	if _, err := e.client.Stat(mount + "/Project/a.txt"); err != nil {
		t.Fatalf("stat by the fetch before the removal: %v", err)
	}
	if _, err := e.client.Stat(mount + "/Project/a.txt"); statusCode(err) != "no such file" {
		t.Fatalf("stat after a change signalled during the fetch: %v; want no such file", err)
	}
}
