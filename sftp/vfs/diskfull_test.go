package vfs_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
)

// mountSmallDisk mounts a tmpfs of size (e.g. "1m") at a new folder and
// unmounts it when the test ends; it skips the test where mounting is not
// possible (not root, no mount, a container without the capability).
func mountSmallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a %s tmpfs to fill (needs root and mount(8)): %v %s", size, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// TestDiskFullDuringUpload: an upload that fills the disk fails with a
// clear "no space left", leaves no partial file (neither under its name nor
// as a temporary one) and no change to the file it would have replaced, and
// the session goes on serving: listings, downloads and, with room again,
// uploads.
func TestDiskFullDuringUpload(t *testing.T) {
	skipOnS3(t, "a full disk: an object store has no fixed capacity")
	disk := mountSmallDisk(t, "1m")
	e := newEnvAt(t, disk, filepath.Join(disk, "data"))
	c := e.client
	if err := writeFile(c, "/My Files/keep.txt", []byte("the old content")); err != nil {
		t.Fatal(err)
	}

	big := bytes.Repeat([]byte("full disk "), 300_000) // 3 MB on a 1 MiB disk
	for _, name := range []string{"/My Files/big.bin", "/My Files/keep.txt"} {
		err := writeFile(c, name, big)
		if err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("uploading 3 MB to %s on a 1 MiB disk: %v, want a \"no space left\" failure", name, err)
		}
	}

	entries, err := os.ReadDir(e.home())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	if len(names) != 1 || names[0] != "keep.txt" {
		t.Fatalf("after the failed uploads the folder holds %v, want only keep.txt (no partial or temporary file)", names)
	}
	if got := mustRead(t, filepath.Join(e.home(), "keep.txt")); got != "the old content" {
		t.Fatalf("the file a failed upload would have replaced now holds %d bytes", len(got))
	}

	// The session still serves.
	if _, err := c.ReadDir("/My Files"); err != nil {
		t.Fatalf("listing after the disk filled: %v", err)
	}
	f, err := c.Open("/My Files/keep.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(b) != "the old content" {
		t.Fatalf("download after the disk filled: %q, %v", b, err)
	}
	if err := writeFile(c, "/My Files/after.txt", []byte("room again")); err != nil {
		t.Fatalf("a small upload once the partial ones were discarded: %v", err)
	}
}

// writeFile uploads data to name, reporting the first error of the
// writes or of the close.
func writeFile(c *sftp.Client, name string, data []byte) error {
	f, err := c.Create(name)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}
