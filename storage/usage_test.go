package storage_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TreeSizes counts regular files at their apparent size (a sparse file at
// its length), leaves out what skip names and never follows a symbolic
// link out of the tree; Accounts lists the account directories.
func TestTreeSizesAndAccounts(t *testing.T) {
	l, base := newLocal(t)
	mustRoot(t)(l.UserHome(account, user)).Close()
	mustRoot(t)(l.ProjectFolder(account, folder)).Close()
	home := filepath.Join(base, account, "users", user)
	proj := filepath.Join(base, account, "folders", folder)
	must := mustSucceed(t)
	must(os.MkdirAll(filepath.Join(home, "sub"), 0o750))
	must(os.WriteFile(filepath.Join(home, "sub", "a.txt"), []byte("12345"), 0o640))
	must(os.WriteFile(filepath.Join(home, ".partial-upload"), []byte("skip me"), 0o640))
	f, err := os.Create(filepath.Join(proj, "sparse.bin"))
	must(err)
	must(f.Truncate(1 << 40))
	f.Close()
	outside := filepath.Join(t.TempDir(), "big")
	must(os.WriteFile(outside, make([]byte, 4096), 0o640))
	must(os.Symlink(outside, filepath.Join(home, "link")))
	must(os.Symlink(filepath.Dir(outside), filepath.Join(home, "dirlink")))
	must(os.Mkdir(filepath.Join(base, "not-an-account"), 0o750))

	sizes, err := l.TreeSizes(account, func(name string) bool { return strings.HasPrefix(name, ".partial") })
	must(err)
	if len(sizes) != 2 || sizes[user] != 5 || sizes[folder] != 1<<40 {
		t.Errorf("sizes %v; want %s: 5 and %s: 2^40", sizes, user, folder)
	}
	ids, err := l.Accounts()
	must(err)
	if !slices.Equal(ids, []string{account}) {
		t.Errorf("accounts %v; want [%s]", ids, account)
	}
	if _, err := l.TreeSizes("../etc", nil); err == nil {
		t.Error("TreeSizes took a path as an account ID")
	}
}
