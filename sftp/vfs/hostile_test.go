package vfs_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
)

const (
	otherAccount = "99999999-0000-4000-8000-000000000009"
	secret       = "SECRET"
)

// plantTraps puts things a client must never reach around and inside the
// tree at dir: a sentinel beside the storage base, a sibling of the home
// whose name shares its prefix, another account's file, and symbolic links
// inside dir that lead to each of them.
func (e *env) plantTraps(dir string) {
	t := e.t
	t.Helper()
	outside := filepath.Join(e.dir, "secret.txt")
	evil := e.home() + "-evil"
	other := filepath.Join(e.base, otherAccount, "users", userID)
	if !exists(outside) {
		mustWrite(t, outside, secret+" outside")
		mustWrite(t, filepath.Join(evil, "secret.txt"), secret+" sibling")
		mustWrite(t, filepath.Join(other, "secret.txt"), secret+" other account")
	}
	mustWrite(t, filepath.Join(dir, "t.txt"), "inside")
	rel, err := filepath.Rel(dir, outside)
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"escape-abs":   outside,
		"escape-rel":   rel,
		"escape-dir":   e.dir,
		"escape-evil":  "../" + filepath.Base(evil),
		"escape-other": other,
		"inside-link":  "t.txt", // stays inside: must keep working
	} {
		os.Remove(filepath.Join(dir, name))
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot records every entry under root except those under skip.
func snapshot(t *testing.T, root string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, s := range skip {
			if p == s {
				return filepath.SkipDir
			}
		}
		fi, err := lstatPath(p)
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hostilePaths are what a client might send to get out; prefix is the
// writable tree the client is in.
func hostilePaths(prefix, hostDir string) []string {
	long := strings.Repeat("a", 300)
	deep := prefix + strings.Repeat("/d", 2500)
	return []string{
		"../secret.txt",
		"/../secret.txt",
		"/../../../secret.txt",
		`\..\secret.txt`,
		`..\..\secret.txt`,
		prefix + `\..\..\secret.txt`,
		"a/../../secret.txt",
		prefix + "/a/../../../secret.txt",
		prefix + "/../../..",
		"//etc/passwd",
		"/etc/passwd",
		hostDir + "/secret.txt",
		prefix + "/secret.txt\x00.txt",
		prefix + "/\x00",
		prefix + "/" + long,
		deep,
		prefix + "/escape-abs",
		prefix + "/escape-rel",
		prefix + "/escape-dir/secret.txt",
		prefix + "/escape-dir/data",
		prefix + "/escape-evil/secret.txt",
		prefix + "/escape-other/secret.txt",
		prefix + "/../" + userID + "-evil/secret.txt",
		prefix + "-evil/secret.txt",
		"/" + accountID + "/users/" + userID + "-evil/secret.txt",
	}
}

// attack runs every operation on p and fails the test if one of them
// reads a planted secret or lists the host directory.
func (e *env) attack(p, inside string) {
	t := e.t
	t.Helper()
	c := e.client
	if got, err := e.get(p); err == nil && strings.Contains(got, secret) {
		t.Errorf("get %q read a secret: %q", p, got)
	}
	if infos, err := c.ReadDir(p); err == nil {
		for _, fi := range infos {
			if fi.Name() == "secret.txt" || fi.Name() == "data" {
				t.Errorf("ls %q listed %q outside the tree", p, fi.Name())
			}
		}
	}
	if f, err := c.OpenFile(p, os.O_RDWR); err == nil {
		buf := make([]byte, 64)
		if n, _ := f.ReadAt(buf, 0); strings.Contains(string(buf[:n]), secret) {
			t.Errorf("open %q read-write read a secret", p)
		}
		f.WriteAt([]byte("PWNED"), 0)
		f.Close()
	}
	c.Stat(p)
	c.Lstat(p)
	c.ReadLink(p)
	c.StatVFS(p)
	e.put(p, "PWNED")
	c.Mkdir(p)
	c.Mkdir(p + "/x")
	c.Chtimes(p, time.Unix(0, 0), time.Unix(0, 0))
	c.Truncate(p, 0)
	c.Rename(inside+"/t.txt", p)
	c.PosixRename(p, inside+"/moved")
	c.Remove(p)
	c.RemoveDirectory(p)
	c.Symlink(p, inside+"/link")
}

func TestHostilePathsStayInside(t *testing.T) {
	skipOnS3(t, "the traps are symbolic links planted on the disk; objects have none")
	e := newEnv(t)
	home := e.home()
	if err := os.MkdirAll(home, 0o750); err != nil {
		t.Fatal(err)
	}
	e.plantTraps(home)
	before := snapshot(t, e.dir, home)

	// The planted link that stays inside works, so the refusals below are
	// about escaping, not about links as such.
	if got, err := e.get("/My Files/inside-link"); err != nil || got != "inside" {
		t.Fatalf("inside link = %q, %v", got, err)
	}

	for _, p := range hostilePaths("/My Files", e.dir) {
		e.plantTraps(home)
		e.attack(p, "/My Files")
	}
	if after := snapshot(t, e.dir, home); !sameSnapshot(before, after) {
		t.Errorf("something outside the home changed:\n%s", diffSnapshot(before, after))
	}
	for _, link := range []string{"escape-abs", "escape-rel", "escape-dir/secret.txt"} {
		if _, err := e.client.Stat("/My Files/" + link); statusCode(err) != "permission denied" {
			t.Errorf("stat through %s: %v; want permission denied", link, err)
		}
	}
}

func TestCleanPathRefusals(t *testing.T) {
	e := newEnv(t)
	// Names and paths too long are "bad message", as OpenSSH answers
	// ENAMETOOLONG.
	for p, want := range map[string]string{
		"/My Files/a\x00b": "failure",
		"/My Files/" + strings.Repeat("n", vfs.MaxNameLen+1): "bad message",
		"/My Files" + strings.Repeat("/d", 2100):             "bad message",
		"/My Files/.skiff-upload-X":                          "failure",
	} {
		if err := e.put(p, "x"); statusCode(err) != want {
			t.Errorf("put %.40q: %v; want %s", p, err, want)
		}
		if err := e.client.Mkdir(p); statusCode(err) != want {
			t.Errorf("mkdir %.40q: %v; want %s", p, err, want)
		}
	}
	// The longest name allowed works.
	name := strings.Repeat("n", vfs.MaxNameLen)
	if err := e.put("/My Files/"+name, "x"); err != nil {
		t.Errorf("put a %d-byte name: %v", vfs.MaxNameLen, err)
	}
	entries, _ := readDirPath(e.home())
	if len(entries) != 1 || entries[0].Name() != name {
		t.Errorf("home holds %v; want only the long name", entries)
	}
}

func sameSnapshot(a, b map[string]string) bool { return diffSnapshot(a, b) == "" }

func diffSnapshot(a, b map[string]string) string {
	var out strings.Builder
	for k, v := range a {
		if b[k] != v {
			fmt.Fprintf(&out, "changed or removed: %s (%s -> %s)\n", k, v, b[k])
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			fmt.Fprintf(&out, "added: %s\n", k)
		}
	}
	return out.String()
}

// A write or truncation beyond what the file system allows a file (EFBIG:
// an offset near 2^62 on ext4) is the client's doing: it gets "file too
// large", and the server logs no internal failure (env.close checks).
func TestFileTooLargeIsTheClientsError(t *testing.T) {
	skipOnS3(t, "a disk's largest file")
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "old.bin"), "x")
	f, err := e.client.Create("/My Files/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const far = 1 << 62
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Skipf("%s at 2^62 worked: this file system takes files that large", what)
		}
		if !strings.Contains(err.Error(), "file too large") {
			t.Errorf("%s at 2^62: %v; want \"file too large\"", what, err)
		}
	}
	_, err = f.WriteAt([]byte("x"), far)
	check("write", err)
	check("ftruncate", f.Truncate(far))
	check("truncate", e.client.Truncate("/My Files/old.bin", far))
}
