package vfs_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/sftp/vfs"
)

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"", "/", nil},
		{".", "/", nil},
		{"/", "/", nil},
		{"My Files", "/My Files", nil},
		{"/My Files/", "/My Files", nil},
		{"//My Files///a//", "/My Files/a", nil},
		{"/My Files/./a/../b", "/My Files/b", nil},
		{"../../..", "/", nil},
		{"/../etc/passwd", "/etc/passwd", nil},
		{"a/../../x", "/x", nil},
		{"/My Files/..a/a..", "/My Files/..a/a..", nil},
		{"/My Files/ spaced name ", "/My Files/ spaced name ", nil},
		{`\..\x`, `/\..\x`, nil}, // a backslash is an ordinary character
		{`/My Files/a\b`, `/My Files/a\b`, nil},
		{"/My Files/a\x00", "", vfs.ErrInvalidChar},
		{"/" + strings.Repeat("a", 255), "/" + strings.Repeat("a", 255), nil},
		{"/" + strings.Repeat("a", 256), "", vfs.ErrNameTooLong},
		{strings.Repeat("/a", 2048), strings.Repeat("/a", 2048), nil},
		{strings.Repeat("/a", 2048) + "/", "", vfs.ErrPathTooLong},
		{"/x/.skiff-upload-ABC", "", vfs.ErrReserved},
		{"/x/.skiff-upload-ABC/../y", "/x/y", nil}, // lexically gone
	} {
		got, err := vfs.CleanPath(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("CleanPath(%.40q) = %.40q, %v; want %.40q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzCleanPath checks what every clean path must be; `go test` runs the
// seeds, `go test -fuzz FuzzCleanPath ./sftp/vfs` explores.
func FuzzCleanPath(f *testing.F) {
	for _, seed := range []string{
		"", "/", ".", "..", "../..", "/My Files/../../etc", `\..\`, `a\b`, "a\x00b",
		"//etc//passwd", "/Projects Shared With Me/p/../../My Files", "./.skiff-upload-x",
		strings.Repeat("a", 300), strings.Repeat("/ab", 1400), "/é/名前/\u202e", "/a/./b/.../c",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := vfs.CleanPath(in)
		if err != nil {
			if got != "" {
				t.Fatalf("refused %q but returned %q", in, got)
			}
			if !errors.Is(err, vfs.ErrInvalidChar) && !errors.Is(err, vfs.ErrNameTooLong) &&
				!errors.Is(err, vfs.ErrPathTooLong) && !errors.Is(err, vfs.ErrReserved) {
				t.Fatalf("unknown error %v", err)
			}
			return
		}
		if !strings.HasPrefix(got, "/") || path.Clean(got) != got {
			t.Fatalf("CleanPath(%q) = %q: not clean and absolute", in, got)
		}
		if strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("CleanPath(%q) = %q: holds NUL", in, got)
		}
		if len(got) > vfs.MaxPathLen {
			t.Fatalf("CleanPath(%q): %d bytes", in, len(got))
		}
		for _, name := range strings.Split(got[1:], "/") {
			if name == ".." || name == "." || len(name) > vfs.MaxNameLen || strings.HasPrefix(name, ".skiff-upload-") {
				t.Fatalf("CleanPath(%q) = %q: bad element %q", in, got, name)
			}
		}
		if again, err := vfs.CleanPath(got); err != nil || again != got {
			t.Fatalf("CleanPath is not idempotent on %q: %q, %v", got, again, err)
		}
	})
}
