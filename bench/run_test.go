package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// -profile-dir may name a directory that does not exist yet, relative to
// the working directory: the servers, which write some of the profiles,
// get its absolute path.
func TestProfileDirIsMadeAndAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	dir, err := makeProfileDir(filepath.Join("profiles", "run1"))
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(dir) {
		t.Errorf("profile directory %q is not absolute", dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("profile directory not made: %v", err)
	}
	if _, err := makeProfileDir(filepath.Join(dir, "x", "\x00")); err == nil {
		t.Error("an impossible profile directory was accepted")
	}
}
