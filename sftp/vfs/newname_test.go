package vfs_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
)

// Names that break other users' clients (invalid UTF-8, control characters
// such as a newline) cannot be created by upload, mkdir or rename, with a
// status that says why; such a name already on disk stays readable and can
// be renamed to a good one.
func TestNewNamesMustBeCleanText(t *testing.T) {
	e := newEnv(t)
	if err := e.put("/My Files/ok.txt", "x"); err != nil {
		t.Fatal(err)
	}
	wantRefused := func(err error, what string) {
		t.Helper()
		var se *sftp.StatusError
		if !errors.As(err, &se) || statusCode(err) != "failure" || !strings.Contains(se.Error(), "invalid file name: file names must be valid UTF-8 text without control characters") {
			t.Errorf("%s: got %v, want a failure saying the name is invalid", what, err)
		}
	}
	for _, name := range []string{"line\nbreak.txt", "bad\xff\xfe.txt", "tab\there", "esc\x1b[31m", "del\x7f", "c1\u0085"} {
		p := "/My Files/" + name
		wantRefused(e.put(p, "x"), "upload "+strings.ToValidUTF8(name, "?"))
		wantRefused(e.client.Mkdir(p), "mkdir "+strings.ToValidUTF8(name, "?"))
		wantRefused(e.client.Rename("/My Files/ok.txt", p), "rename to "+strings.ToValidUTF8(name, "?"))
	}
	if entries, _ := readDirPath(e.home()); len(entries) != 1 {
		t.Errorf("home holds %v; want only ok.txt", entries)
	}

	// A bad name put there by other means: readable, and renamable to a good one.
	mustWrite(t, filepath.Join(e.home(), "old\nname"), "legacy")
	if got, err := e.get("/My Files/old\nname"); err != nil || got != "legacy" {
		t.Errorf("read the existing bad name: %q, %v", got, err)
	}
	if err := e.client.Rename("/My Files/old\nname", "/My Files/old name"); err != nil {
		t.Errorf("rename it to a good name: %v", err)
	}
	// Unicode text, including spaces and emoji, is fine.
	if err := e.put("/My Files/Résumé 🚀 日本.txt", "x"); err != nil {
		t.Errorf("upload a Unicode name: %v", err)
	}
}
