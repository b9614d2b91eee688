package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The two-node deployment of docs/OPERATIONS.md ("From an empty PostgreSQL
// to two nodes"): both on the runtime role alone, one shared storage folder
// and one host-key encryption key. A client sees one server: the same host
// key on both, and a file uploaded through one is there through the other.
func TestTwoNodes(t *testing.T) {
	env := nodesEnv(t)
	one := serveBinary(t, env, "--data-dir="+newDataDir(t))
	two := serveBinary(t, env, "--data-dir="+newDataDir(t))
	if k1, k2 := servedHostKey(t, one.sftp), servedHostKey(t, two.sftp); k1 != k2 {
		t.Errorf("host keys differ: %s and %s", k1, k2)
	}
	login := ownerSFTPLogin(t, one, "boss@acme.example", acmePassword)
	local := filepath.Join(t.TempDir(), "a.txt")
	if err := os.WriteFile(local, []byte("through node one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := sftpRun(t, one.sftp, login, "", acmePassword, "put "+local+" a.txt\n"); err != nil {
		t.Fatalf("upload through node one: %v\n%s", err, out)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	if out, err := sftpRun(t, two.sftp, login, "", acmePassword, "get a.txt "+back+"\n"); err != nil {
		t.Fatalf("download through node two: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(back); string(b) != "through node one\n" {
		t.Errorf("node two served %q", b)
	}
}

// nodesEnv is the environment every node of a deployment shares, as
// docs/OPERATIONS.md sets it: acmeInstance's database on the runtime role, one
// storage folder and one host-key encryption key.
func nodesEnv(t *testing.T) []string {
	t.Helper()
	pg := startOperatorPG(t)
	_, serviceURL := pg.acmeInstance(t)
	keyFile := filepath.Join(t.TempDir(), "host-key.key")
	if err := os.WriteFile(keyFile, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"SKIFF_DATABASE_URL=" + serviceURL, "SKIFF_STORAGE_DIR=" + newDataDir(t), "SKIFF_HOST_KEY_ENCRYPTION_KEY_FILE=" + keyFile}
}
