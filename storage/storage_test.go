package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/storage"
)

const (
	account = "5b0e6a52-6a0c-4f4e-9a3c-1f8f2d6c0a11"
	user    = "0d3c8e2a-77f1-4c1e-8d0b-5a6f9e2b4c33"
	folder  = "a1a1a1a1-0000-4000-8000-000000000001"
)

func newLocal(t *testing.T) (*storage.Local, string) {
	t.Helper()
	base := filepath.Join(t.TempDir(), "data")
	l, err := storage.NewLocal(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, base
}

// mustRoot returns a checker for (root, error) results that closes the
// root when the test ends.
func mustRoot(t *testing.T) func(*os.Root, error) *os.Root {
	return func(r *os.Root, err error) *os.Root {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
}

func TestLayoutAndModes(t *testing.T) {
	l, base := newLocal(t)
	home := mustRoot(t)(l.UserHome(account, user))
	proj := mustRoot(t)(l.ProjectFolder(account, folder))
	if err := home.WriteFile("a.txt", []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := proj.WriteFile("b.txt", []byte("b"), 0o640); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{
		base:                         0o700,
		filepath.Join(base, account): 0o700,
		filepath.Join(base, account, "users", user):     0o750,
		filepath.Join(base, account, "folders", folder): 0o750,
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v; want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(base, account, "users", user, "a.txt")); string(b) != "a" {
		t.Error("home file not where the layout says")
	}
	if b, _ := os.ReadFile(filepath.Join(base, account, "folders", folder, "b.txt")); string(b) != "b" {
		t.Error("project folder file not where the layout says")
	}
	// A second open finds the same tree.
	again := mustRoot(t)(l.UserHome(account, user))
	if _, err := again.Stat("a.txt"); err != nil {
		t.Errorf("reopened home: %v", err)
	}
}

func TestIDsAreValidated(t *testing.T) {
	l, base := newLocal(t)
	for _, id := range []string{
		"", "..", "../" + user, user + "/..", "/etc", "00000000-0000-0000-0000-000000000000",
		strings.Repeat("a", 36), user + "\x00", "a1a1a1a1-0000-4000-8000-00000000000/",
	} {
		if r, err := l.UserHome(account, id); !errors.Is(err, storage.ErrInvalidID) {
			if r != nil {
				r.Close()
			}
			t.Errorf("UserHome(%q): %v; want ErrInvalidID", id, err)
		}
		if _, err := l.ProjectFolder(id, folder); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("ProjectFolder with account %q: %v; want ErrInvalidID", id, err)
		}
		if _, err := l.FreeSpace(id); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("FreeSpace(%q): %v; want ErrInvalidID", id, err)
		}
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 0 {
		t.Errorf("invalid IDs created %v", entries)
	}
	// Spellings of one UUID name one directory.
	upper := mustRoot(t)(l.UserHome(strings.ToUpper(account), "{"+user+"}"))
	if err := upper.WriteFile("x", nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, account, "users", user, "x")); err != nil {
		t.Errorf("upper-case ID did not map to the canonical directory: %v", err)
	}
}

func TestPlantedAccountLinkDoesNotEscape(t *testing.T) {
	l, base := newLocal(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(base, account)); err != nil {
		t.Fatal(err)
	}
	if r, err := l.UserHome(account, user); err == nil {
		r.Close()
		t.Fatal("a symbolic link planted as the account directory was followed out of the base")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("created outside the base: %v", entries)
	}
}

func TestFreeSpace(t *testing.T) {
	l, _ := newLocal(t)
	sp, err := l.FreeSpace(account)
	if err != nil {
		t.Fatal(err)
	}
	if sp.BlockSize == 0 || sp.Blocks == 0 || sp.BlocksAvail > sp.Blocks || sp.NameMax == 0 {
		t.Errorf("FreeSpace = %+v", sp)
	}
}

func TestMove(t *testing.T) {
	l, _ := newLocal(t)
	home := mustRoot(t)(l.UserHome(account, user))
	proj := mustRoot(t)(l.ProjectFolder(account, folder))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(home.WriteFile("a.txt", []byte("a"), 0o640))
	must(proj.Mkdir("in", 0o750))
	must(proj.WriteFile("in/taken.txt", []byte("t"), 0o640))

	// Across trees.
	must(storage.Move(home, "a.txt", proj, "in/a.txt", false))
	if b, err := proj.ReadFile("in/a.txt"); err != nil || string(b) != "a" {
		t.Fatalf("moved file: %q, %v", b, err)
	}
	if _, err := home.Stat("a.txt"); !errors.Is(err, os.ErrNotExist) {
		t.Error("source still there")
	}
	// No replace.
	if err := storage.Move(proj, "in/a.txt", proj, "in/taken.txt", false); !errors.Is(err, os.ErrExist) {
		t.Errorf("move onto existing without replace: %v; want ErrExist", err)
	}
	if b, _ := proj.ReadFile("in/taken.txt"); string(b) != "t" {
		t.Error("target replaced")
	}
	// Replace.
	must(storage.Move(proj, "in/a.txt", proj, "in/taken.txt", true))
	if b, _ := proj.ReadFile("in/taken.txt"); string(b) != "a" {
		t.Error("target not replaced")
	}
	// Not the root itself, nor through "..".
	for _, bad := range [][2]string{{".", "x"}, {"in/taken.txt", "."}, {"in/taken.txt", "../x"}, {"../x", "y"}} {
		if err := storage.Move(proj, bad[0], home, bad[1], true); err == nil {
			t.Errorf("Move(%q, %q) succeeded", bad[0], bad[1])
		}
	}
	if _, err := proj.Stat("in/taken.txt"); err != nil {
		t.Errorf("refused moves lost the file: %v", err)
	}
}

func TestMoveThroughPlantedLink(t *testing.T) {
	l, _ := newLocal(t)
	home := mustRoot(t)(l.UserHome(account, user))
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(home.Name(), "out")); err != nil {
		t.Fatal(err)
	}
	if err := home.WriteFile("a.txt", []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := storage.Move(home, "a.txt", home, "out/a.txt", false); err == nil {
		t.Error("moved through a link leading out of the tree")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside: %v", entries)
	}
	// Moving the link itself is fine: it stays a link inside the tree.
	if err := storage.Move(home, "out", home, "renamed", false); err != nil {
		t.Errorf("moving the link itself: %v", err)
	}
}
