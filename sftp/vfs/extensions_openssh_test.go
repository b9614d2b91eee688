package vfs_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OpenSSH's sftp client uses the extensions: cp is copy-data, df is
// statvfs, ls -l lays out its lines with users-groups-by-id. (The client
// of OpenSSH 9.2 does not expand "~" through expand-path yet; the raw tests
// cover it.)
func TestOpenSSHClientExtensions(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "data")
	server, env := skiffServer(t, base, false)
	home := filepath.Join(base, accountID, "users", userID)
	data := make([]byte, 9<<20+5)
	rand.Read(data)
	mustWrite(t, filepath.Join(home, "docs", "data.bin"), string(data))

	out, err := openSSH(t, dir, server, env, `cd docs
cp data.bin copy.bin
cp data.bin "/My Files/top.bin"
cd ..
pwd
ls -l docs
df
df -h
-cp missing.bin nothing.bin
`)
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	for _, name := range []string{"docs/copy.bin", "top.bin"} {
		if got, _ := os.ReadFile(filepath.Join(home, name)); !bytes.Equal(got, data) {
			t.Errorf("cp to %s: %d bytes, not the source's", name, len(got))
		}
	}
	for _, want := range []string{"Remote working directory: /My Files\n", "copy.bin", "Size", "Avail"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if exists(filepath.Join(home, "docs", "nothing.bin")) {
		t.Error("cp of a missing file made a file")
	}
}
