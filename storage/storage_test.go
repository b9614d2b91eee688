package storage_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// newTrees returns a user's home and a project folder of one account.
func newTrees(t *testing.T) (home, proj *os.Root) {
	t.Helper()
	l, _ := newLocal(t)
	return mustRoot(t)(l.UserHome(account, user)), mustRoot(t)(l.ProjectFolder(account, folder))
}

// mustSucceed returns a checker that ends the test on an error.
func mustSucceed(t *testing.T) func(error) {
	return func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// mustRoot returns a checker for (root, error) results that closes the
// root when the test ends.
func mustRoot(t *testing.T) func(storage.Tree, error) *os.Root {
	return func(tree storage.Tree, err error) *os.Root {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tree.Close() })
		return tree.(*storage.LocalTree).Root()
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
	home, proj := newTrees(t)
	must := mustSucceed(t)
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

// noReplaceMovers are the ways a move without replacing is made: the
// platform's own (renameat2, renameatx_np or link) and the portable
// fallback, which every platform reaches on some file systems.
var noReplaceMovers = map[string]func(srcRoot *os.Root, src string, dstRoot *os.Root, dst string) error{
	"Move": func(srcRoot *os.Root, src string, dstRoot *os.Root, dst string) error {
		return storage.Move(srcRoot, src, dstRoot, dst, false)
	},
	"MoveByLink": storage.MoveByLink,
}

func TestMoveWithoutReplace(t *testing.T) {
	for name, move := range noReplaceMovers {
		t.Run(name, func(t *testing.T) {
			home, proj := newTrees(t)
			must := mustSucceed(t)
			must(home.WriteFile("a.txt", []byte("a"), 0o640))
			must(home.Mkdir("dir", 0o750))
			must(home.WriteFile("dir/inner.txt", []byte("i"), 0o640))
			must(home.Symlink("a.txt", "link"))
			must(proj.WriteFile("taken.txt", []byte("t"), 0o640))
			must(proj.Mkdir("empty", 0o750))

			// Nothing is replaced: not a file, not even an empty directory
			// (which a plain rename of a directory would replace).
			for _, c := range [][2]string{
				{"a.txt", "taken.txt"}, {"a.txt", "empty"},
				{"dir", "taken.txt"}, {"dir", "empty"},
				{"link", "taken.txt"},
			} {
				if err := move(home, c[0], proj, c[1]); !errors.Is(err, os.ErrExist) {
					t.Errorf("%s onto %s: %v; want ErrExist", c[0], c[1], err)
				}
			}
			if b, _ := proj.ReadFile("taken.txt"); string(b) != "t" {
				t.Error("a refused move replaced the target file")
			}
			if fi, err := proj.Lstat("empty"); err != nil || !fi.IsDir() {
				t.Errorf("a refused move replaced the empty directory: %v", err)
			}
			for _, src := range []string{"a.txt", "dir/inner.txt", "link"} {
				if _, err := home.Lstat(src); err != nil {
					t.Errorf("a refused move lost its source %s: %v", src, err)
				}
			}

			// Free names: each kind moves whole, under one name afterwards.
			must(move(home, "a.txt", proj, "a.txt"))
			must(move(home, "dir", proj, "dir"))
			must(move(home, "link", proj, "link"))
			for _, gone := range []string{"a.txt", "dir", "link"} {
				if _, err := home.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("source %s still there: %v", gone, err)
				}
			}
			if b, err := proj.ReadFile("a.txt"); err != nil || string(b) != "a" {
				t.Errorf("moved file: %q, %v", b, err)
			}
			if fi, err := proj.Stat("a.txt"); err == nil {
				if n := nlink(fi); n != 1 {
					t.Errorf("moved file has %d names, want 1", n)
				}
			}
			if b, err := proj.ReadFile("dir/inner.txt"); err != nil || string(b) != "i" {
				t.Errorf("moved directory's file: %q, %v", b, err)
			}
			// A link moves as the link, not as what it points at.
			if target, err := proj.Readlink("link"); err != nil || target != "a.txt" {
				t.Errorf("moved link: %q, %v", target, err)
			}
		})
	}
}

// Clients racing to the same free name: exactly one wins and every other
// file is still there under its own name. A check-then-rename would let
// several "win", each silently replacing the one before.
func TestMoveWithoutReplaceRace(t *testing.T) {
	const racers, rounds = 8, 50
	for name, move := range noReplaceMovers {
		t.Run(name, func(t *testing.T) {
			l, _ := newLocal(t)
			home := mustRoot(t)(l.UserHome(account, user))
			for round := range rounds {
				dst := fmt.Sprintf("dst-%d", round)
				for i := range racers {
					if err := home.WriteFile(fmt.Sprintf("src-%d-%d", round, i), []byte{byte(i)}, 0o640); err != nil {
						t.Fatal(err)
					}
				}
				var wins atomic.Int32
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range racers {
					wg.Go(func() {
						<-start
						err := move(home, fmt.Sprintf("src-%d-%d", round, i), home, dst)
						switch {
						case err == nil:
							wins.Add(1)
						case !errors.Is(err, os.ErrExist):
							t.Errorf("racer %d: %v", i, err)
						}
					})
				}
				close(start)
				wg.Wait()
				if n := wins.Load(); n != 1 {
					t.Fatalf("round %d: %d moves to one name succeeded, want 1", round, n)
				}
				left := 0
				for i := range racers {
					if _, err := home.Lstat(fmt.Sprintf("src-%d-%d", round, i)); err == nil {
						left++
					}
				}
				if left != racers-1 {
					t.Fatalf("round %d: %d of %d losing files left, the rest were lost", round, left, racers-1)
				}
			}
		})
	}
}

// nlink is how many names a file has; 1 where the system does not say.
func nlink(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

func TestRemoveTrees(t *testing.T) {
	l, base := newLocal(t)
	home := mustRoot(t)(l.UserHome(account, user))
	proj := mustRoot(t)(l.ProjectFolder(account, folder))
	other := mustRoot(t)(l.UserHome(account, "0d3c8e2a-77f1-4c1e-8d0b-5a6f9e2b4c34"))
	for _, r := range []*os.Root{home, proj, other} {
		if err := r.MkdirAll("a/b", 0o750); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteFile("a/b/c.txt", []byte("c"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// A symbolic link in the home to a file outside: removing the home
	// removes the link, never what it points to.
	outside := filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(base, account, "users", user, "a", "out")); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoveUserHome(strings.ToUpper(account), user); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoveProjectFolder(account, folder); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{filepath.Join(base, account, "users", user), filepath.Join(base, account, "folders", folder)} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after removal: %v", gone, err)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the link's target went too: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, account, "users", "0d3c8e2a-77f1-4c1e-8d0b-5a6f9e2b4c34", "a", "b", "c.txt")); err != nil {
		t.Errorf("another user's file went too: %v", err)
	}
	// Removing what is already gone is not an error; a bad ID is.
	if err := l.RemoveUserHome(account, user); err != nil {
		t.Errorf("removing a missing home: %v", err)
	}
	for _, id := range []string{"..", "", "../" + user, "00000000-0000-0000-0000-000000000000"} {
		if err := l.RemoveProjectFolder(account, id); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("RemoveProjectFolder(%q) = %v, want ErrInvalidID", id, err)
		}
		if err := l.RemoveUserHome(id, user); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("RemoveUserHome(account %q) = %v, want ErrInvalidID", id, err)
		}
	}
}
