package vfs_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
)

// peer is a second session of e's user on e's storage, charging q: another
// client acting on the same files at the same time. It ends with the test.
func (e *env) peer(q vfs.Quota) *sftp.Client {
	e.t.Helper()
	s, err := vfs.NewSession(context.Background(), vfs.Config{
		AccountID: accountID, UserID: userID,
		Storage: e.store, Gate: e.gate, Shares: e.shares, SharesChanged: e.changed,
		CacheTTL: time.Second, Now: e.clock.Now, Quota: q,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	server, client := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- s.Serve(server) }()
	c, err := sftp.NewClientPipe(client, client)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		c.Close()
		client.Close()
		<-served
		s.Close()
	})
	return c
}

// storedInHome is what the user's home really stores: the sizes of its
// files, uploads in progress left out.
func storedInHome(t *testing.T, e *env) int64 { return bytesUnder(t, e.home(), false) }

// Two sessions writing one existing file in place at once (two appends,
// two resumes from the same end), or one writing it in place while the
// other removes it, replaces it or truncates it: the storage use recorded
// is what is stored, on the disk and on S3. What each client sees differs
// (docs/OPERATIONS.md, Files on S3): on the disk every handle writes into
// the same file, as with OpenSSH; on S3 the close that finds the file
// changed by the other session fails, and its bytes are not stored.
func TestInPlaceWritesOfTwoSessionsAreCountedAsStored(t *testing.T) {
	const old = 1000
	oldContent := strings.Repeat("o", old)
	for _, tc := range []struct {
		name string
		// act runs the two sessions, a and b, on the file f, which holds
		// old bytes; it returns the error of a's close.
		act func(t *testing.T, a, b *sftp.Client) error
		// want is f's content after, on the disk and on S3 ("" for no
		// file); closeFails whether a's close fails on S3.
		disk, s3   string
		closeFails bool
	}{{
		name: "two appends",
		act: func(t *testing.T, a, b *sftp.Client) error {
			fa := mustOpen(t, a, "f", os.O_WRONLY|os.O_APPEND)
			fb := mustOpen(t, b, "f", os.O_WRONLY|os.O_APPEND)
			mustWriteAt(t, fb, "b", 0, 200)
			mustWriteAt(t, fa, "a", 0, 100)
			if err := fb.Close(); err != nil {
				t.Errorf("b's close: %v", err)
			}
			return fa.Close()
		},
		disk:       oldContent + strings.Repeat("b", 200) + strings.Repeat("a", 100),
		s3:         oldContent + strings.Repeat("b", 200),
		closeFails: true,
	}, {
		name: "two resumes from the same end",
		act: func(t *testing.T, a, b *sftp.Client) error {
			fa := mustOpen(t, a, "f", os.O_WRONLY)
			fb := mustOpen(t, b, "f", os.O_WRONLY)
			mustWriteAt(t, fa, "a", old, 100)
			mustWriteAt(t, fb, "b", old, 50)
			if err := fb.Close(); err != nil {
				t.Errorf("b's close: %v", err)
			}
			return fa.Close()
		},
		disk:       oldContent + strings.Repeat("b", 50) + strings.Repeat("a", 50),
		s3:         oldContent + strings.Repeat("b", 50),
		closeFails: true,
	}, {
		name: "append to a file the other session removes",
		act: func(t *testing.T, a, b *sftp.Client) error {
			fa := mustOpen(t, a, "f", os.O_WRONLY|os.O_APPEND)
			mustWriteAt(t, fa, "a", 0, 5)
			if err := b.Remove("f"); err != nil {
				t.Fatal(err)
			}
			mustWriteAt(t, fa, "a", 0, 500)
			return fa.Close()
		},
		closeFails: true,
	}, {
		name: "append to a file the other session replaces",
		act: func(t *testing.T, a, b *sftp.Client) error {
			fa := mustOpen(t, a, "f", os.O_WRONLY|os.O_APPEND)
			mustWriteAt(t, fa, "a", 0, 5)
			fb := mustOpen(t, b, "f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
			mustWriteAt(t, fb, "n", 0, 30)
			if err := fb.Close(); err != nil {
				t.Fatal(err)
			}
			mustWriteAt(t, fa, "a", 0, 500)
			return fa.Close()
		},
		disk: strings.Repeat("n", 30), s3: strings.Repeat("n", 30),
		closeFails: true,
	}, {
		name: "append to a file the other session truncates",
		act: func(t *testing.T, a, b *sftp.Client) error {
			fa := mustOpen(t, a, "f", os.O_WRONLY|os.O_APPEND)
			mustWriteAt(t, fa, "a", 0, 100)
			if err := b.Truncate("f", 10); err != nil {
				t.Fatal(err)
			}
			mustWriteAt(t, fa, "a", 0, 100)
			return fa.Close()
		},
		disk:       oldContent[:10] + strings.Repeat("a", 100),
		s3:         oldContent[:10],
		closeFails: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			q := newMemQuota(-1)
			e := newEnv(t, withQuota(q))
			b := e.peer(q)
			if err := e.put("f", oldContent); err != nil {
				t.Fatal(err)
			}
			q.wantState(t, "after the first upload", old, 0)

			err := tc.act(t, e.client, b)
			want := tc.disk
			if onS3 {
				want = tc.s3
				if tc.closeFails && err == nil {
					t.Error("a's close succeeded; want it to fail: the file was changed by b")
				}
			}
			if err != nil && (!onS3 || !tc.closeFails) {
				t.Errorf("a's close: %v", err)
			}
			p := filepath.Join(e.home(), "f")
			switch got := ""; {
			case want == "" && exists(p):
				t.Errorf("f holds %d bytes; want no file", len(mustRead(t, p)))
			case want != "":
				if got = mustRead(t, p); got != want {
					t.Errorf("f holds %.40q… (%d bytes); want %.40q… (%d bytes)", got, len(got), want, len(want))
				}
			}
			stored := storedInHome(t, e)
			if stored != int64(len(want)) {
				t.Errorf("the home stores %d bytes; want %d", stored, len(want))
			}
			q.wantUsed(t, "recorded use once both sessions closed the file", stored)
		})
	}
}

func mustOpen(t *testing.T, c *sftp.Client, name string, flag int) *sftp.File {
	t.Helper()
	f, err := c.OpenFile(name, flag)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// mustWriteAt writes n bytes of s at off.
func mustWriteAt(t *testing.T, f *sftp.File, s string, off int64, n int) {
	t.Helper()
	if _, err := f.WriteAt([]byte(strings.Repeat(s, n)), off); err != nil {
		t.Fatal(err)
	}
}

// wantUsed waits for the quota to hold used bytes of the home (a close
// settles in the background), whatever the sessions have reserved.
func (q *memQuota) wantUsed(t *testing.T, what string, used int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		u, _ := q.state()
		if u == used {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: used %d; want %d", what, u, used)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Several sessions uploading one name at once, round after round (a sync
// job run from several machines), while another removes it: every client
// is told its upload succeeded, the file is always one whole upload, never
// a mix, and the storage use recorded is what is stored. It drifted by a
// file's size each time two closes measured the same replaced file before
// either was in place.
func TestUploadsOfOneNameAtOnceAreCountedAsStored(t *testing.T) {
	q := newMemQuota(-1)
	e := newEnv(t, withQuota(q))
	clients := []*sftp.Client{e.client}
	for range 5 {
		clients = append(clients, e.peer(q))
	}
	remover := e.peer(q)
	p := filepath.Join(e.home(), "same.bin")
	for range 10 {
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				f, err := c.Create("same.bin")
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := f.Write([]byte(strings.Repeat(string(rune('a'+i)), 1000*(i+1)))); err != nil {
					t.Error(err)
				}
				if err := f.Close(); err != nil {
					t.Errorf("client %d's close: %v", i, err)
				}
			})
		}
		wg.Go(func() {
			if err := remover.Remove("same.bin"); err != nil && statusCode(err) != "no such file" {
				t.Errorf("remove: %v", err)
			}
		})
		wg.Wait()
		if exists(p) {
			got := mustRead(t, p)
			i := int(got[0] - 'a')
			if got != strings.Repeat(got[:1], 1000*(i+1)) {
				t.Fatalf("same.bin holds %d bytes, not one client's upload", len(got))
			}
		}
		if q.wantUsed(t, "recorded use after a round", storedInHome(t, e)); t.Failed() {
			return
		}
	}
}

// An upload into a folder that another session renames before the upload
// is closed. On the disk the upload's hidden file moves with the folder,
// and the close cannot put it in place: it fails (No such file), and the
// hidden file, which no quota counts and no listing shows, is emptied
// rather than left holding the upload in the renamed folder for days. On
// S3 the upload lands at its old name (docs/OPERATIONS.md, Files on S3).
// Either way, what the home holds, hidden files included, is what is
// recorded, and the renamed folder, empty to the eye, can be removed (its
// hidden file used to keep it for 48 hours).
func TestUploadIntoAFolderRenamedMeanwhile(t *testing.T) {
	q := newMemQuota(-1)
	e := newEnv(t, withQuota(q))
	b := e.peer(q)
	if err := e.client.Mkdir("d"); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, e.client, "d/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	mustWriteAt(t, f, "x", 0, 3000)
	if err := b.Rename("d", "e"); err != nil {
		t.Fatal(err)
	}
	mustWriteAt(t, f, "y", 3000, 2000)
	err := f.Close()
	want := int64(0)
	if onS3 {
		want = 5000
		if err != nil {
			t.Errorf("close: %v", err)
		}
		if got := mustRead(t, filepath.Join(e.home(), "d", "f")); len(got) != 5000 {
			t.Errorf("d/f holds %d bytes; want the whole upload, 5000", len(got))
		}
	} else if statusCode(err) != "no such file" {
		t.Errorf("close: %v; want no such file", err)
	}
	if got := bytesUnder(t, e.home(), true); got != want {
		t.Errorf("the home holds %d bytes, hidden files included; want %d", got, want)
	}
	q.wantUsed(t, "recorded use", want)
	// The renamed folder looks empty, and is: it can be removed.
	if err := b.RemoveDirectory("e"); err != nil {
		t.Errorf("rmdir of the renamed folder: %v", err)
	}
}

// bytesUnder is what every file under dir holds, hidden upload files
// included or not.
func bytesUnder(t *testing.T, dir string, hidden bool) int64 {
	t.Helper()
	entries, err := readDirPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, d := range entries {
		switch {
		case d.IsDir():
			n += bytesUnder(t, filepath.Join(dir, d.Name()), hidden)
			continue
		case !hidden && storage.IsUploadTemp(d.Name()):
			continue
		}
		fi, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// A download while another session replaces the file with a shorter one.
// On the disk the reader reads the file it opened to its end, as with
// OpenSSH. On S3 the reads past what was fetched before the replacement
// fail ("changed by someone else"): the client must be told, not handed a
// short reply, which pkg/sftp (and rclone with it) takes for the end of
// the file, ending the download early with no error.
func TestDownloadOfAFileReplacedMeanwhileIsNeverCutShortSilently(t *testing.T) {
	e := newEnv(t)
	b := e.peer(nil)
	const size = 40 << 20 // past the first fetch and S3's read-ahead
	if err := e.put("big.bin", strings.Repeat("o", size)); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, e.client, "big.bin", os.O_RDONLY)
	defer r.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, b, "big.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	mustWriteAt(t, f, "n", 0, 10)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	got := len(head) + len(rest)
	if strings.Count(string(rest), "o") != len(rest) {
		t.Error("the download mixes the old file with the new one")
	}
	switch {
	case onS3 && err == nil:
		t.Errorf("the download ended without an error after %d of %d bytes", got, size)
	case onS3 && !strings.Contains(err.Error(), "changed by someone else"):
		t.Errorf("the download failed with %v; want the file changed by someone else", err)
	case !onS3 && (err != nil || got != size):
		t.Errorf("the download read %d of %d bytes, err %v; want the whole file it opened", got, size, err)
	}
}

// A folder that another session is uploading into looks empty (the upload
// is not listed until closed), but on the disk it is not removed while the
// upload runs, as with OpenSSH, where the file being written is there: the
// upload then lands in it. On S3 the folder goes, and the upload's close
// puts it back with the file (docs/OPERATIONS.md, Files on S3).
func TestRemovingAFolderWithAnUploadInProgress(t *testing.T) {
	e := newEnv(t)
	b := e.peer(nil)
	if err := e.client.Mkdir("d"); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, e.client, "d/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	mustWriteAt(t, f, "x", 0, 3000)
	err := b.RemoveDirectory("d")
	if !onS3 && statusCode(err) != "failure" {
		t.Errorf("rmdir while an upload into the folder runs: %v; want failure (not empty)", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("the upload's close: %v", err)
	}
	if got := mustRead(t, filepath.Join(e.home(), "d", "f")); len(got) != 3000 {
		t.Errorf("d/f holds %d bytes; want the upload's 3000", len(got))
	}
}

// A truncation by path that the quota refuses, while another session
// appends to the file: what the append wrote is still counted at its
// close.
func TestRefusedTruncationLosesNoOtherWritersCount(t *testing.T) {
	q := newMemQuota(1 << 20)
	e := newEnv(t, withQuota(q))
	b := e.peer(q)
	if err := e.put("f", strings.Repeat("o", 1000)); err != nil {
		t.Fatal(err)
	}
	fa := mustOpen(t, e.client, "f", os.O_WRONLY|os.O_APPEND)
	mustWriteAt(t, fa, "a", 0, 100)
	if err := b.Truncate("f", 1<<30); statusCode(err) != "failure" {
		t.Fatalf("truncate past the quota: %v; want failure", err)
	}
	if err := fa.Close(); err != nil {
		t.Fatal(err)
	}
	q.wantUsed(t, "recorded use", storedInHome(t, e))
}
