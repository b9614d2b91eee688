package sftp

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"md5sum", []string{"md5sum"}},
		{"  md5sum   a  ", []string{"md5sum", "a"}},
		{`md5sum /My\ Files/a\ b.txt`, []string{"md5sum", "/My Files/a b.txt"}},
		{`sha1sum '/My Files/it'\''s $HOME*.txt'`, []string{"sha1sum", "/My Files/it's $HOME*.txt"}},
		{`sha256sum "/My Files/\"q\" \\ \a"`, []string{"sha256sum", `/My Files/"q" \ \a`}},
		{"md5sum a'\n'b", []string{"md5sum", "a\nb"}},
		{"md5sum a\\\nb", []string{"md5sum", "ab"}},
		{"md5sum -- -x ''", []string{"md5sum", "--", "-x", ""}},
		{"md5sum /My\\ Files/été,v1:2@x+y=%.txt", []string{"md5sum", "/My Files/été,v1:2@x+y=%.txt"}},
		// rclone's escaping of a name with punctuation (backend/sftp's
		// quoteOrEscapeShellPath for a unix shell).
		{`md5sum /My\ Files/itest/\!\"\#\$\%\&\'\(\)\*\+\,-\.\/\:\;\<\=\>\?\@\[\\\]\^_\` + "`" + `\{\|\}\~`,
			[]string{"md5sum", "/My Files/itest/!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}},
	} {
		got, err := splitCommand(tc.line)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, line := range []string{
		"md5sum a; rm -rf /", "md5sum a && id", "md5sum a | sh", "md5sum $(id)", "md5sum `id`",
		"md5sum *", "md5sum a?", "md5sum [ab]", "md5sum ~/a", "md5sum {a,b}", "md5sum a > b",
		"md5sum < a", "md5sum a &", "md5sum #x", "md5sum !x", "md5sum (a)", `md5sum "$HOME"`,
		"md5sum \"`id`\"", "md5sum 'unterminated", `md5sum "unterminated`, `md5sum a\`,
		"md5sum a\nid", "md5sum\x00a", "echo ${ShellId}%ComSpec%",
	} {
		if got, err := splitCommand(line); err == nil {
			t.Errorf("splitCommand(%q) = %q; want a refusal", line, got)
		}
	}
}

func TestSumLine(t *testing.T) {
	sum := []byte{0xab, 0x01}
	for name, want := range map[string]string{
		"/My Files/a.txt": "ab01  /My Files/a.txt\n",
		"-":               "ab01  -\n",
		`a\b`:             `\ab01  a\\b` + "\n",
		"a\nb\rc":         `\ab01  a\nb\rc` + "\n",
	} {
		if got := sumLine(sum, name); got != want {
			t.Errorf("sumLine(%q) = %q; want %q", name, got, want)
		}
	}
}

// Identities of the vfs test sessions: storage wants UUIDs.
const (
	vfsAccount = "6c1f3a2b-0d4e-4f5a-8b6c-7d8e9f0a1b2c"
	vfsUser    = "7d2e4b3c-1e5f-4a6b-9c7d-8e9f0a1b2c3d"
	vfsFolder  = "8e3f5c4d-2f6a-4b7c-8d8e-9f0a1b2c3d4e"
)

// vfsSessions opens real vfs sessions on a local storage, with one folder
// shared with the user with the rights the test sets.
type vfsSessions struct {
	store  *storage.Local
	rights vfs.Rights
	denied atomic.Bool // the Gate refuses
}

func (v *vfsSessions) Open(ctx context.Context, _ *sftplogin.Login) (Session, error) {
	return vfs.NewSession(ctx, vfs.Config{
		AccountID: vfsAccount, UserID: vfsUser, Storage: v.store,
		Gate: vfs.GateFunc(func(context.Context) error {
			if v.denied.Load() {
				return errors.New("user deleted")
			}
			return nil
		}),
		Shares: vfs.SharesFunc(func(context.Context) ([]vfs.SharedFolder, error) {
			return []vfs.SharedFolder{{ID: vfsFolder, Name: "Shared", Rights: v.rights}}, nil
		}),
	})
}

// vfsServer is a test server whose sessions are vfs trees; it returns the
// home and the shared folder on disk.
func vfsServer(t *testing.T, dir *fakeDirectory, rights vfs.Rights) (*testServer, *vfsSessions, string, string) {
	t.Helper()
	base := t.TempDir()
	store, err := storage.NewLocal(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sessions := &vfsSessions{store: store, rights: rights}
	ts := newTestServer(t, dir, func(c *Config) { c.Sessions = sessions })
	for _, open := range []func() (storage.Tree, error){
		func() (storage.Tree, error) { return store.UserHome(vfsAccount, vfsUser) },
		func() (storage.Tree, error) { return store.ProjectFolder(vfsAccount, vfsFolder) },
	} {
		r, err := open()
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	return ts, sessions, filepath.Join(base, vfsAccount, "users", vfsUser), filepath.Join(base, vfsAccount, "folders", vfsFolder)
}

// run runs a command line on a new session of c: stdout, stderr, exit
// status.
func run(t *testing.T, c *ssh.Client, line, stdin string) (string, string, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &out, &errOut, strings.NewReader(stdin)
	err = s.Run(line)
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitStatus()
	}
	t.Fatalf("run %q: %v", line, err)
	return "", "", 0
}

func TestChecksumCommands(t *testing.T) {
	ts, _, home, folder := vfsServer(t, &fakeDirectory{password: passwords(alice)}, vfs.List|vfs.Upload)
	content := strings.Repeat("checksum me\n", 100000)
	for name, data := range map[string]string{
		filepath.Join(home, "docs", "a b.txt"):   content,
		filepath.Join(home, "it's.txt"):          "x",
		filepath.Join(home, `back\slash`):        "y",
		filepath.Join(folder, "upload-only.txt"): "secret",
	} {
		if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	hexOf := func(sum []byte) string { return hex.EncodeToString(sum) }
	md5s, sha1s, sha256s := md5.Sum([]byte(content)), sha1.Sum([]byte(content)), sha256.Sum256([]byte(content))
	x1 := sha1.Sum([]byte("x"))
	y5 := md5.Sum([]byte("y"))
	empty5 := md5.Sum(nil)
	abc256 := sha256.Sum256([]byte("abc"))
	for _, tc := range []struct {
		line, stdin string
		out         string
		errPart     string
		status      int
	}{
		{`md5sum /My\ Files/docs/a\ b.txt`, "", hexOf(md5s[:]) + "  /My Files/docs/a b.txt\n", "", 0},
		{`sha1sum 'docs/a b.txt'`, "", hexOf(sha1s[:]) + "  docs/a b.txt\n", "", 0},
		{`sha256sum "/My Files/docs/a b.txt"`, "", hexOf(sha256s[:]) + "  /My Files/docs/a b.txt\n", "", 0},
		{`sha1sum it\'s.txt`, "", hexOf(x1[:]) + "  it's.txt\n", "", 0},
		// coreutils' escaping of a name with a backslash.
		{`md5sum back\\slash`, "", `\` + hexOf(y5[:]) + `  back\\slash` + "\n", "", 0},
		// rclone's probe: the empty input's sum.
		{"md5sum", "", hexOf(empty5[:]) + "  -\n", "", 0},
		{"sha256sum -", "abc", hexOf(abc256[:]) + "  -\n", "", 0},
		{"sha1sum -- it's.txt", "", "", "", 1}, // unquoted ' : refused below
		{"md5sum missing.txt 'docs/a b.txt'", "", hexOf(md5s[:]) + "  docs/a b.txt\n", "md5sum: missing.txt: No such file or directory", 1},
		{"md5sum /My\\ Files/docs", "", "", "md5sum: /My Files/docs: Is a directory", 1},
		{"md5sum /Projects\\ Shared\\ With\\ Me/Shared/upload-only.txt", "", "", "Permission denied", 1},
		{"md5sum -c sums", "", "", "option -c not supported", 1},
		{"md5sum a; id", "", "", "not allowed unquoted", 127},
		{"id", "", "", "command not found", 127},
		{"sha512sum x", "", "", "command not found", 127},
		{"echo ${ShellId}%ComSpec%", "", "", "not allowed unquoted", 127},
		{"", "", "", "command not found", 127},
	} {
		if tc.line == "sha1sum -- it's.txt" {
			tc.errPart, tc.status = "unterminated quote", 127
		}
		out, errOut, status := run(t, c, tc.line, tc.stdin)
		if out != tc.out || !strings.Contains(errOut, tc.errPart) || status != tc.status || (tc.errPart == "") != (errOut == "") {
			t.Errorf("%q: stdout %q stderr %q status %d; want %q, stderr with %q, status %d",
				tc.line, out, errOut, status, tc.out, tc.errPart, tc.status)
		}
	}
	// The connection still serves SFTP.
	sc := mustSFTP(t, c)
	if _, err := sc.Stat("docs/a b.txt"); err != nil {
		t.Errorf("sftp after the commands: %v", err)
	}
}

// A command whose session the Gate ends fails, and the connection ends as
// after SFTP.
func TestChecksumCommandEndsWithSession(t *testing.T) {
	ts, sessions, home, _ := vfsServer(t, &fakeDirectory{password: passwords(alice)}, vfs.AllRights)
	if err := os.WriteFile(filepath.Join(home, "a.txt"), []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	sessions.denied.Store(true)
	_, errOut, status := run(t, c, "md5sum a.txt", "")
	if status != 1 || !strings.Contains(errOut, "SFTP access has ended") {
		t.Errorf("after the gate refused: stderr %q status %d", errOut, status)
	}
	ended := make(chan struct{})
	go func() { c.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Error("the connection did not end")
	}
}

// FuzzSplitCommand: a line splitCommand accepts means the same words to a
// shell: each word, single-quoted, splits back to itself.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{`md5sum /My\ Files/a`, `sha1sum 'a b' "c\"d"`, "md5sum a'\n'b", "md5sum a;b", `x "$y"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := splitCommand(line)
		if err != nil {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := splitCommand(strings.Join(quoted, " "))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("%q split into %q; quoted again: %q, %v", line, words, again, err)
		}
		for _, c := range []string{";", "|", "&", "<", ">", "$(", "`", "*", "?"} {
			if !strings.Contains(line, c) {
				continue
			}
			// Such a character was quoted or escaped: it is inside a word.
			if !strings.Contains(strings.Join(words, " "), c) {
				t.Fatalf("%q: %q vanished from the words %q", line, c, words)
			}
		}
	})
}
