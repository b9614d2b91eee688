package vfs_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// headsOf counts the HEAD requests among reqs of keys ending in one of
// suffixes.
func headsOf(reqs []string, suffixes ...string) int {
	n := 0
	for _, r := range reqs {
		key, ok := strings.CutPrefix(r, "HEAD ")
		key, _, _ = strings.Cut(key, "?")
		for _, s := range suffixes {
			if ok && strings.HasSuffix(key, s) {
				n++
			}
		}
	}
	return n
}

// listsOf counts the listings among reqs of what is under folder.
func listsOf(reqs []string, folder string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "list-type=2") &&
			strings.HasSuffix(r, url.QueryEscape("/"+folder)) {
			n++
		}
	}
	return n
}

// One request of a client asks the store about a name once: the session's
// checks and the store's own share the answers (storage.Memo). Before, an
// OPENDIR asked about its folder three times (6 HEADs: each stat of a name
// without an extension asks for the object and the folder's marker), an
// upload's OPEN twice and its CLOSE once more, folder included, a
// download's OPEN asked before its first READ fetched, and a REMOVE asked
// twice.
func TestARequestAsksTheStoreOnceAboutAName(t *testing.T) {
	if !onS3 {
		t.Skip("the local disk answers a stat from the system's own cache: nothing to share")
	}
	e := newEnv(t)
	if err := e.client.MkdirAll("/My Files/d"); err != nil {
		t.Fatal(err)
	}
	if err := e.put("/My Files/d/a.txt", "data"); err != nil {
		t.Fatal(err)
	}
	e.s3Requests()

	if list, err := e.client.ReadDir("/My Files/d"); err != nil || len(list) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if got := headsOf(e.s3Requests(), "/d", "/d/"); got != 2 {
		t.Errorf("listing d asked the store about d %d times (HEADs); want 2: the object and the marker, once", got)
	}

	// The OPEN asks whether the name is taken (by a file or a folder)
	// and whether its folder exists all at once: HEAD d/new.txt, the
	// listing of d/new.txt/, HEAD d and HEAD d/.
	e.s3Log().Gather(4, 2*time.Second)
	f, err := e.client.Create("/My Files/d/new.txt") // OPEN, WRITE, CLOSE
	if err != nil {
		t.Fatal(err)
	}
	if !e.s3Log().Gathered() {
		t.Error("an upload's OPEN asked the store one question after the other")
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The OPEN asks once (the object, then whether a folder has the
	// name); the CLOSE asks again for the size of what the upload
	// replaces (another session may have written it meanwhile): the
	// object only, since a folder would not count.
	reqs := e.s3Requests()
	if heads, lists := headsOf(reqs, "/d/new.txt"), listsOf(reqs, "d/new.txt/"); heads != 2 || lists != 1 {
		t.Errorf("an upload asked the store about its name with %d HEADs and %d listings; want 2 and 1 (its OPEN, its CLOSE)\n%s",
			heads, lists, strings.Join(reqs, "\n"))
	}
	e.s3Requests()

	// A download's OPEN learns the file's state and its first bytes in
	// one GET, from which its READs are answered.
	if got, err := e.get("/My Files/d/new.txt"); err != nil || got != "new" {
		t.Errorf("the upload reads back %q, %v", got, err)
	}
	if reqs := e.s3Requests(); len(reqs) != 1 || !strings.HasPrefix(reqs[0], "GET ") || !strings.HasSuffix(reqs[0], "/d/new.txt?x-id=GetObject") {
		t.Errorf("a download of a small file asked the store %q; want one GET", reqs)
	}

	if err := e.client.Remove("/My Files/d/new.txt"); err != nil {
		t.Fatal(err)
	}
	if got := headsOf(e.s3Requests(), "/d/new.txt"); got != 1 {
		t.Errorf("a REMOVE asked the store about its name %d times; want 1", got)
	}
	if _, err := e.client.Stat("/My Files/d/new.txt"); err == nil {
		t.Error("the removed file is still there")
	}
}
