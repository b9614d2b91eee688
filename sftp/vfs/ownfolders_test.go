package vfs_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
)

const folderC = "c3c3c3c3-0000-4000-8000-000000000003"

// The user's own project folders are also in /My Files, beside the home's
// entries, with the rights they have in the folder; a home entry keeps a
// name it shares with a folder, which then shows as "Name (2)" until the
// name is free again.
func TestOwnFoldersInMyFiles(t *testing.T) {
	e := newEnv(t)
	plans, reports := e.folder(folderA), e.folder(folderB)
	e.folder(folderC)
	mustWrite(t, filepath.Join(plans, "f.txt"), "plans")
	mustWrite(t, filepath.Join(reports, "r.txt"), "report")
	mustWrite(t, filepath.Join(e.home(), "notes.txt"), "notes")
	mustWrite(t, filepath.Join(e.home(), "Plans", "old.txt"), "old")
	e.shares.set(
		vfs.SharedFolder{ID: folderA, Name: "Plans", Rights: vfs.AllRights, InMyFiles: true},
		vfs.SharedFolder{ID: folderB, Name: "Reports", Rights: vfs.List | vfs.Download, InMyFiles: true},
		vfs.SharedFolder{ID: folderC, Name: "Theirs", Rights: vfs.AllRights},
	)

	ls := func(p string) []string {
		t.Helper()
		infos, err := e.client.ReadDir(p)
		if err != nil {
			t.Fatalf("ls %s: %v", p, err)
		}
		return names(infos)
	}
	if got, want := ls("/My Files"), []string{"Plans", "Plans (2)", "Reports", "notes.txt"}; !slices.Equal(got, want) {
		t.Fatalf("ls /My Files = %q; want %q", got, want)
	}
	if got, want := ls(mount), []string{"Plans", "Reports", "Theirs"}; !slices.Equal(got, want) {
		t.Fatalf("ls %s = %q; want %q", mount, got, want)
	}
	for p, mode := range map[string]os.FileMode{"/My Files/Plans (2)": 0o755, "/My Files/Reports": 0o555} {
		if fi, err := e.client.Stat(p); err != nil || !fi.IsDir() || fi.Mode().Perm() != mode {
			t.Errorf("stat %s = %v, %v; want a directory, mode %v", p, fi, err, mode)
		}
	}

	// The home's own "Plans" is where it was; the folder is "Plans (2)".
	if got, err := e.get("/My Files/Plans/old.txt"); err != nil || got != "old" {
		t.Errorf("home's Plans/old.txt = %q, %v", got, err)
	}
	if got, err := e.get("/My Files/Plans (2)/f.txt"); err != nil || got != "plans" {
		t.Errorf("folder's f.txt through My Files = %q, %v", got, err)
	}
	if err := e.put("/My Files/Plans (2)/new.txt", "new"); err != nil {
		t.Fatalf("put into an own folder through My Files: %v", err)
	}
	if got := mustRead(t, filepath.Join(plans, "new.txt")); got != "new" {
		t.Errorf("the folder holds %q", got)
	}
	if got, err := e.get(mount + "/Plans/new.txt"); err != nil || got != "new" {
		t.Errorf("the upload through the shared mount = %q, %v", got, err)
	}
	if exists(filepath.Join(e.home(), "Plans (2)")) {
		t.Error("the upload went to the home")
	}
	// Moving between the home and a mounted folder works both ways.
	if err := e.client.Rename("/My Files/notes.txt", "/My Files/Plans (2)/notes.txt"); err != nil {
		t.Fatalf("move from the home into the folder: %v", err)
	}
	if err := e.client.Rename("/My Files/Plans (2)/notes.txt", "/My Files/notes.txt"); err != nil {
		t.Fatalf("move back: %v", err)
	}

	// Rights apply as in the shared mount: Reports is READ.
	if got, err := e.get("/My Files/Reports/r.txt"); err != nil || got != "report" {
		t.Errorf("download from a READ folder = %q, %v", got, err)
	}
	before := snapshot(t, e.dir)
	for name, do := range map[string]func() error{
		"put":   func() error { return e.put("/My Files/Reports/x.txt", "x") },
		"mkdir": func() error { return e.client.Mkdir("/My Files/Reports/sub") },
		"rm":    func() error { return e.client.Remove("/My Files/Reports/r.txt") },
		"move out": func() error {
			return e.client.Rename("/My Files/Reports/r.txt", "/My Files/r.txt")
		},
	} {
		if err := do(); statusCode(err) != "permission denied" {
			t.Errorf("%s in a READ folder: %v; want permission denied", name, err)
		}
	}
	// The mounted folders themselves cannot be removed, renamed, replaced
	// or made again, whatever the rights.
	for name, do := range map[string]func() error{
		"rmdir":          func() error { return e.client.RemoveDirectory("/My Files/Plans (2)") },
		"rename":         func() error { return e.client.Rename("/My Files/Plans (2)", "/My Files/Elsewhere") },
		"rename into":    func() error { return e.client.Rename("/My Files/Reports", "/My Files/Plans/Reports") },
		"chtimes":        func() error { return e.client.Chtimes("/My Files/Plans (2)", time.Unix(1, 0), time.Unix(1, 0)) },
		"put over":       func() error { return e.put("/My Files/Reports", "x") },
		"posix-rename":   func() error { return e.client.PosixRename("/My Files/notes.txt", "/My Files/Plans (2)") },
		"mkdir same":     func() error { return e.client.Mkdir("/My Files/Reports") },
		"rename to same": func() error { return e.client.Rename("/My Files/notes.txt", "/My Files/Reports") },
	} {
		if err := do(); err == nil {
			t.Errorf("%s of a mounted folder worked", name)
		}
	}
	if after := snapshot(t, e.dir); !sameSnapshot(before, after) {
		t.Errorf("refused operations changed files:\n%s", diffSnapshot(before, after))
	}

	// Once the home's "Plans" is renamed away, the folder takes its name
	// back on the session's next look at its folders.
	if err := e.client.Rename("/My Files/Plans", "/My Files/Old plans"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	if got, want := ls("/My Files"), []string{"Old plans", "Plans", "Reports", "notes.txt"}; !slices.Equal(got, want) {
		t.Fatalf("ls /My Files = %q; want %q", got, want)
	}
	if got, err := e.get("/My Files/Plans/f.txt"); err != nil || got != "plans" {
		t.Errorf("the folder under its own name = %q, %v", got, err)
	}

	// A folder no longer shared with the user leaves My Files too.
	e.shares.set(vfs.SharedFolder{ID: folderB, Name: "Reports", Rights: vfs.List | vfs.Download, InMyFiles: true})
	e.clock.Advance(2 * time.Second)
	if _, err := e.client.Stat("/My Files/Plans"); statusCode(err) != "no such file" {
		t.Errorf("stat of an unshared folder in My Files: %v; want no such file", err)
	}
	if got, want := ls("/My Files"), []string{"Old plans", "Reports", "notes.txt"}; !slices.Equal(got, want) {
		t.Errorf("ls /My Files = %q; want %q", got, want)
	}
}

// A jailed user has no My Files: their own folders stay in the shared mount.
func TestOwnFoldersOfJailedUser(t *testing.T) {
	e := newEnv(t, jailed)
	mustWrite(t, filepath.Join(e.folder(folderA), "f.txt"), "plans")
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Plans", Rights: vfs.AllRights, InMyFiles: true})
	for _, p := range []string{"/My Files/Plans/f.txt", "/My Files/Plans", "My Files/Plans/f.txt"} {
		if _, err := e.get(p); statusCode(err) != "no such file" {
			t.Errorf("get %s: %v; want no such file", p, err)
		}
	}
	if got, err := e.get(mount + "/Plans/f.txt"); err != nil || got != "plans" {
		t.Errorf("get through the shared mount = %q, %v", got, err)
	}
	if homeMade(e) {
		t.Error("a home was created for a jailed user")
	}
}

// While the shared folders cannot be read, the last ones read serve for the
// grace period (an outage of the database does not take them away); after
// it the home still works, and the name of a mounted folder fails rather
// than reaching the home instead.
func TestOwnFoldersWhileSharesFail(t *testing.T) {
	e := newEnv(t)
	e.folder(folderA)
	e.shares.set(vfs.SharedFolder{ID: folderA, Name: "Plans", Rights: vfs.AllRights, InMyFiles: true})
	if err := e.put("/My Files/Plans/in.txt", "x"); err != nil {
		t.Fatal(err)
	}
	e.shares.mu.Lock()
	e.shares.err = os.ErrDeadlineExceeded
	e.shares.mu.Unlock()
	e.clock.Advance(2 * time.Second)
	if err := e.put("/My Files/Plans/during.txt", "x"); err != nil {
		t.Errorf("put into the mounted folder within the grace period: %v", err)
	}
	if !exists(filepath.Join(e.folder(folderA), "during.txt")) {
		t.Error("the upload within the grace period did not reach the folder")
	}
	e.clock.Advance(vfs.DefaultGrace)

	if err := e.put("/My Files/Plans/more.txt", "x"); statusCode(err) != "failure" {
		t.Errorf("put into the mounted folder while shares fail: %v; want failure", err)
	}
	if exists(filepath.Join(e.home(), "Plans")) {
		t.Error("the upload went to the home")
	}
	if err := e.put("/My Files/x.txt", "x"); err != nil {
		t.Errorf("put into the home while shares fail: %v", err)
	}
	if infos, err := e.client.ReadDir("/My Files"); err != nil || !slices.Equal(names(infos), []string{"x.txt"}) {
		t.Errorf("ls /My Files while shares fail = %q, %v", names(infos), err)
	}
}
