package vfs_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

func names(infos []os.FileInfo) []string {
	var out []string
	for _, fi := range infos {
		out = append(out, fi.Name())
	}
	slices.Sort(out)
	return out
}

func TestStartDirectoryAndRoot(t *testing.T) {
	e := newEnv(t)
	wd, err := e.client.Getwd()
	if err != nil || wd != "/My Files" {
		t.Fatalf("Getwd = %q, %v; want /My Files", wd, err)
	}
	for p, want := range map[string]string{
		"docs":              "/My Files/docs",
		"../":               "/",
		"/My Files//b/../c": "/My Files/c",
		"/../../..":         "/",
	} {
		if got, err := e.client.RealPath(p); err != nil || got != want {
			t.Errorf("RealPath(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	// As OpenSSH: the last element need not exist, what leads to it must.
	if got, err := e.client.RealPath("/a/c"); statusCode(err) != "no such file" {
		t.Errorf("RealPath(/a/c) = %q, %v; want no such file", got, err)
	}
	infos, err := e.client.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(infos); !slices.Equal(got, []string{"My Files", "Projects Shared With Me"}) {
		t.Fatalf("ls / = %q", got)
	}
	for _, p := range []string{"/", "/Projects Shared With Me", "/My Files"} {
		fi, err := e.client.Stat(p)
		if err != nil || !fi.IsDir() {
			t.Errorf("stat %s = %v, %v; want a directory", p, fi, err)
		}
	}
	// The top level and the mount point are read-only.
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"mkdir /x", func() error { return e.client.Mkdir("/x") }},
		{"put /x", func() error { return e.put("/x", "x") }},
		{"mkdir in mount", func() error { return e.client.Mkdir("/Projects Shared With Me/x") }},
		{"put in mount", func() error { return e.put("/Projects Shared With Me/x", "x") }},
		{"rmdir My Files", func() error { return e.client.RemoveDirectory("/My Files") }},
		{"rename My Files", func() error { return e.client.Rename("/My Files", "/Mine") }},
		{"rmdir mount", func() error { return e.client.RemoveDirectory("/Projects Shared With Me") }},
		{"chtimes /", func() error { return e.client.Chtimes("/", time.Now(), time.Now()) }},
	} {
		if err := op.do(); statusCode(err) != "permission denied" {
			t.Errorf("%s: %v; want permission denied", op.name, err)
		}
	}
}

func TestMyFilesOperations(t *testing.T) {
	e := newEnv(t)
	c := e.client
	home := e.home()

	if err := c.Mkdir("docs"); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if err := c.Mkdir("docs"); statusCode(err) != "failure" {
		t.Errorf("mkdir existing: %v; want failure", err)
	}
	if err := e.put("docs/a.txt", "hello"); err != nil {
		t.Fatalf("put: %v", err)
	}
	if got := mustRead(t, filepath.Join(home, "docs", "a.txt")); got != "hello" {
		t.Fatalf("on disk: %q", got)
	}
	if got, err := e.get("/My Files/docs/a.txt"); err != nil || got != "hello" {
		t.Fatalf("get = %q, %v", got, err)
	}

	fi, err := c.Stat("docs/a.txt")
	if err != nil || fi.Size() != 5 || fi.IsDir() || fi.Name() != "a.txt" {
		t.Fatalf("stat = %v, %v", fi, err)
	}
	if fi, err := c.Lstat("docs"); err != nil || !fi.IsDir() {
		t.Fatalf("lstat docs = %v, %v", fi, err)
	}
	if _, err := c.Stat("docs/missing"); statusCode(err) != "no such file" {
		t.Errorf("stat missing: %v", err)
	}
	if _, err := e.get("docs"); statusCode(err) != "failure" {
		t.Errorf("get a directory: %v; want failure", err)
	}

	// Overwrite replaces the content.
	if err := e.put("docs/a.txt", "bye"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.get("docs/a.txt"); got != "bye" {
		t.Fatalf("after overwrite: %q", got)
	}

	// ls shows entries, never an upload in progress.
	pending, err := c.Create("docs/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pending.Write([]byte("in progress")); err != nil {
		t.Fatal(err)
	}
	infos, err := c.ReadDir("docs")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(infos); !slices.Equal(got, []string{"a.txt"}) {
		t.Errorf("ls during upload = %q; want only a.txt", got)
	}
	if exists(filepath.Join(home, "docs", "b.txt")) {
		t.Error("an unfinished upload is visible under its name")
	}
	// The open upload can be stat'ed (clients fstat their handle).
	if fi, err := pending.Stat(); err != nil || fi.Size() != int64(len("in progress")) {
		t.Errorf("fstat of open upload = %v, %v", fi, err)
	}
	if err := pending.Close(); err != nil {
		t.Fatal(err)
	}
	infos, _ = c.ReadDir("docs")
	if got := names(infos); !slices.Equal(got, []string{"a.txt", "b.txt"}) {
		t.Errorf("ls after upload = %q", got)
	}

	// Times are set; modes are accepted and ignored.
	mtime := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := c.Chtimes("docs/a.txt", mtime, mtime); err != nil {
		t.Fatalf("chtimes: %v", err)
	}
	if fi, _ := statPath(filepath.Join(home, "docs", "a.txt")); !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime on disk = %v; want %v", fi.ModTime(), mtime)
	}
	if err := c.Chmod("docs/a.txt", 0o777); err != nil {
		t.Errorf("chmod: %v; want it accepted", err)
	}
	if fi, _ := statPath(filepath.Join(home, "docs", "a.txt")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode on disk = %v; chmod must not apply", fi.Mode())
	}
	if err := c.Chmod("docs/missing", 0o600); statusCode(err) != "no such file" {
		t.Errorf("chmod missing: %v", err)
	}
	if err := c.Truncate("docs/b.txt", 2); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	if got := mustRead(t, filepath.Join(home, "docs", "b.txt")); got != "in" {
		t.Errorf("after truncate: %q", got)
	}

	// rename refuses to replace; posix-rename replaces.
	if err := c.Rename("docs/a.txt", "docs/b.txt"); statusCode(err) != "failure" {
		t.Errorf("rename onto existing: %v; want failure", err)
	}
	if err := c.Rename("docs/a.txt", "docs/c.txt"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if err := c.PosixRename("docs/c.txt", "docs/b.txt"); err != nil {
		t.Fatalf("posix-rename: %v", err)
	}
	if got := mustRead(t, filepath.Join(home, "docs", "b.txt")); got != "bye" || exists(filepath.Join(home, "docs", "c.txt")) {
		t.Errorf("after posix-rename: b.txt = %q", got)
	}

	// rmdir refuses a non-empty directory; rm refuses a directory.
	if err := c.RemoveDirectory("docs"); statusCode(err) != "failure" {
		t.Errorf("rmdir non-empty: %v", err)
	}
	// A file is not a directory: ENOTDIR, NO_SUCH_FILE as in OpenSSH.
	if err := c.RemoveDirectory("docs/b.txt"); statusCode(err) != "no such file" {
		t.Errorf("rmdir a file: %v", err)
	}
	if err := c.Remove("docs/b.txt"); err != nil {
		t.Fatalf("rm: %v", err)
	}
	if err := c.Remove("docs/b.txt"); statusCode(err) != "no such file" {
		t.Errorf("rm again: %v", err)
	}
	if err := c.RemoveDirectory("docs"); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	if exists(filepath.Join(home, "docs")) {
		t.Error("docs still on disk")
	}

	// Links are refused.
	mustWrite(t, filepath.Join(home, "t.txt"), "t")
	if err := c.Symlink("t.txt", "link"); statusCode(err) != "operation unsupported" {
		t.Errorf("symlink: %v; want operation unsupported", err)
	}
	if err := c.Link("t.txt", "hard"); statusCode(err) != "operation unsupported" {
		t.Errorf("hardlink: %v; want operation unsupported", err)
	}
	if exists(filepath.Join(home, "link")) || exists(filepath.Join(home, "hard")) {
		t.Error("a link was created")
	}

	st, err := c.StatVFS("/My Files")
	if err != nil {
		t.Fatalf("statvfs: %v", err)
	}
	if st.TotalSpace() == 0 || st.Namemax != 255 || st.Flag&1 != 0 {
		t.Errorf("statvfs = %+v", st)
	}
	if st, err := c.StatVFS("/"); err != nil || st.Flag&1 == 0 {
		t.Errorf("statvfs / = %+v, %v; want read-only", st, err)
	}
}

func TestLargeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []sftp.ClientOption
	}{
		{"default packets", nil},
		{"large packets", []sftp.ClientOption{sftp.MaxPacketUnchecked(255 * 1024)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.client.Close()
			e.conn.Close()
			<-e.served
			e.connect(tc.opts...)

			data := make([]byte, 9<<20+123)
			rand.Read(data)
			want := sha256.Sum256(data)

			f, err := e.client.Create("big.bin")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got := sha256.Sum256([]byte(mustRead(t, filepath.Join(e.home(), "big.bin")))); got != want {
				t.Fatal("uploaded file differs")
			}

			r, err := e.client.Open("big.bin")
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			if _, err := r.WriteTo(h); err != nil {
				t.Fatal(err)
			}
			r.Close()
			if !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("downloaded file differs")
			}
		})
	}
}

func TestResumeWritesInPlace(t *testing.T) {
	e := newEnv(t)
	name := filepath.Join(e.home(), "part.bin")
	mustWrite(t, name, "0123456789")
	before, _ := statPath(name)

	// A resuming client opens without truncation and writes at the offset
	// where the remote copy ends.
	f, err := e.client.OpenFile("part.bin", os.O_WRONLY|os.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("abcdef"), 10); err != nil {
		t.Fatal(err)
	}
	// Mid-transfer the data is already there: resume writes in place. (On
	// S3 the new version replaces the object at the close.)
	if got := mustRead(t, name); !onS3 && got != "0123456789abcdef" {
		t.Errorf("during resume: %q", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := statPath(name)
	if !onS3 && !os.SameFile(before, after) {
		t.Error("resume replaced the file instead of writing in place")
	}

	// A write at an offset inside the file overwrites just that range.
	f, err = e.client.OpenFile("part.bin", os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XY"), 2); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "01XY" {
		t.Errorf("read back through the same handle = %q, %v", buf, err)
	}
	f.Close()
	if got := mustRead(t, name); got != "01XY456789abcdef" {
		t.Errorf("after write at offset: %q", got)
	}

	// Without O_CREATE a missing file is not created.
	if _, err := e.client.OpenFile("nope.bin", os.O_WRONLY); statusCode(err) != "no such file" {
		t.Errorf("open missing without create: %v", err)
	}
	// O_EXCL refuses an existing file.
	if _, err := e.client.OpenFile("part.bin", os.O_WRONLY|os.O_CREATE|os.O_EXCL); statusCode(err) != "failure" {
		t.Errorf("exclusive create of existing: %v", err)
	}
}

func TestUploadKeepsOldFileUntilClose(t *testing.T) {
	e := newEnv(t)
	name := filepath.Join(e.home(), "report.txt")
	mustWrite(t, name, "old")
	f, err := e.client.OpenFile("report.txt", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new content")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, name); got != "old" {
		t.Errorf("before close the target reads %q; want the old file", got)
	}
	// put -p sets times on the open handle before closing it.
	mtime := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := e.client.Chtimes("report.txt", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, name); got != "new content" {
		t.Errorf("after close: %q", got)
	}
	fi, err := statPath(name)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime = %v; times set during the upload were lost", fi.ModTime())
	}
	entries, _ := readDirPath(e.home())
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("left behind: %s", de.Name())
		}
	}
}

func TestLongDirectoryListing(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.home(), "many")
	want := make([]string, 0, 350)
	for i := range 350 {
		n := "f" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + strconv.Itoa(i)
		want = append(want, n)
		mustWrite(t, filepath.Join(dir, n), "")
	}
	// Hidden uploads are never listed; on the disk, one left by a crash
	// long ago is removed, a recent one (maybe live on another node) is
	// kept. (On S3 an upload in progress is a multipart upload, not an
	// object: its sweep is tested in storage/s3.)
	crashed, recent := filepath.Join(dir, ".skiff-upload-CRASHED"), filepath.Join(dir, ".skiff-upload-RECENT")
	if !onS3 {
		mustWrite(t, crashed, "")
		mustWrite(t, recent, "")
		now := e.clock.Now()
		if err := os.Chtimes(crashed, now, now.Add(-72*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(recent, now, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := e.client.ReadDir("many")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if got := names(infos); !slices.Equal(got, want) {
		t.Fatalf("listed %d entries, want %d", len(got), len(want))
	}
	if !onS3 && (exists(crashed) || !exists(recent)) {
		t.Errorf("after listing: stale upload kept %v, recent upload kept %v; want false, true", exists(crashed), exists(recent))
	}
	if _, err := e.client.Stat("many/.skiff-upload-CRASHED"); statusCode(err) != "failure" {
		t.Errorf("stat of a hidden upload: %v; want refused", err)
	}
}

// Two handles rewriting one file in place. On a disk both write into the
// same file, and the later bytes stay. On S3 each builds a new version from
// the file as it was opened: the first to close replaces it, and the
// second is refused, saying why, rather than undo the first one's change.
func TestTwoWritersInPlace(t *testing.T) {
	e := newEnv(t)
	name := filepath.Join(e.home(), "shared.txt")
	mustWrite(t, name, "0000000000")
	var handles [2]*sftp.File
	for i := range handles {
		f, err := e.client.OpenFile("shared.txt", os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(strings.Repeat(strconv.Itoa(i+1), 10)), 0); err != nil {
			t.Fatal(err)
		}
		handles[i] = f
	}
	if err := handles[0].Close(); err != nil {
		t.Fatal(err)
	}
	err := handles[1].Close()
	if !onS3 {
		if err != nil || mustRead(t, name) != "2222222222" {
			t.Errorf("on a disk: second close %v, file %q; want both in place, the later bytes kept", err, mustRead(t, name))
		}
		return
	}
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure || !strings.Contains(se.Error(), "changed by someone else since it was opened") {
		t.Errorf("the second close: %v; want a failure saying the file changed", err)
	}
	if got := mustRead(t, name); got != "1111111111" {
		t.Errorf("the file holds %q; want the first close's", got)
	}
}
