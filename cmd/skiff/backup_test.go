package main

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/pgserver"
)

// The backup and restore of docs/OPERATIONS.md ("Backup and restore"), on a
// running instance with encrypted host keys: pg_dump as the backup role,
// then the files; a new PostgreSQL server with the roles made first,
// pg_restore, a fresh storage folder. The restored instance has the same
// host key, logins and files, and needs the same encryption key.
func TestBackupAndRestore(t *testing.T) {
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Skip("no OpenSSH sftp client")
	}
	bins, err := pgserver.FindBinaries()
	if err != nil {
		t.Skipf("no PostgreSQL installed: %v", err)
	}
	pgDump, pgRestore := filepath.Join(bins.Dir, "pg_dump"), filepath.Join(bins.Dir, "pg_restore")
	for _, b := range []string{pgDump, pgRestore} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("no %s next to the server: %v", filepath.Base(b), err)
		}
	}
	keyFile := filepath.Join(t.TempDir(), "host-key-encryption.key")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The instance to back up: an account whose owner has SFTP and a file.
	pg := startOperatorPG(t)
	_, serviceURL := pg.acmeInstance(t)
	const password = acmePassword
	dataA := newDataDir(t)
	a := serveBinary(t, nil, "--database-url="+serviceURL, "--data-dir="+dataA, "--host-key-encryption-key-file="+keyFile)
	login := ownerSFTPLogin(t, a, "boss@acme.example", password)
	local := filepath.Join(t.TempDir(), "ledger.csv")
	if err := os.WriteFile(local, []byte("2026,42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := sftpRun(t, a.sftp, login, "", password, "put "+local+" ledger.csv\n"); err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	hostKey := servedHostKey(t, a.sftp)

	// Back up while it runs: the database first, then the files.
	dump := filepath.Join(t.TempDir(), "skiff.dump")
	backupURL := pg.url("skiff_backup", opBackupPassword, "skiff")
	if out, err := exec.Command(pgDump, "--format=custom", "--compress=0", "--file="+dump, "--dbname="+backupURL).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump as the backup role: %v\n%s", err, out)
	}
	filesCopy := newDataDir(t) // a fresh storage folder (cp makes it)
	if out, err := exec.Command("cp", "-a", filepath.Join(dataA, "files"), filesCopy).CombinedOutput(); err != nil {
		t.Fatalf("copy the files: %v\n%s", err, out)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "boss@acme.example") {
		t.Error("the dump has no customer rows")
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		t.Error("the dump holds a host private key in the clear")
	}

	// Restore on a new server: roles first, an empty database, pg_restore
	// as the superuser, then the files into a fresh storage folder.
	pg2 := startOperatorPG(t)
	_, serviceURL2 := pg2.documentedRoles(t)
	superURL := pg2.url(pgserver.Superuser, opSuperPassword, "skiff")
	if out, err := exec.Command(pgRestore, "--exit-on-error", "--dbname="+superURL, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	// The key is part of the backup, kept apart from the dump.
	wantFailure(t, runSkiff(t, nil, "serve", "--database-url="+serviceURL2, "--storage-dir="+filesCopy, "--data-dir="+newDataDir(t)),
		exitConfig, "--host-key-encryption-key (SKIFF_HOST_KEY_ENCRYPTION_KEY)", "encrypted")
	wrongKey := filepath.Join(t.TempDir(), "wrong.key")
	_, _ = rand.Read(key)
	if err := os.WriteFile(wrongKey, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	wantFailure(t, runSkiff(t, nil, "serve", "--database-url="+serviceURL2, "--storage-dir="+filesCopy, "--data-dir="+newDataDir(t), "--host-key-encryption-key-file="+wrongKey),
		exitConfig, "do not decrypt")

	restored := serveBinary(t, nil, "--database-url="+serviceURL2, "--storage-dir="+filesCopy, "--data-dir="+newDataDir(t), "--host-key-encryption-key-file="+keyFile)
	if got := servedHostKey(t, restored.sftp); got != hostKey {
		t.Errorf("host key %s after the restore, %s before", got, hostKey)
	}
	back := filepath.Join(t.TempDir(), "back.csv")
	if out, err := sftpRun(t, restored.sftp, login, "", password, "get ledger.csv "+back+"\n"); err != nil {
		t.Fatalf("sftp after the restore: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(back); string(got) != "2026,42\n" {
		t.Errorf("restored file holds %q", got)
	}
	(&server{http: restored.http}).login(t, "boss@acme.example", password)
}

// ownerSFTPLogin starts the SFTP trial as an account's owner and returns
// their SFTP login (their password logs it in).
func ownerSFTPLogin(t *testing.T, s *served, email, password string) string {
	t.Helper()
	gs := &server{http: s.http}
	tok := gs.login(t, email, password)
	gs.gql(t, tok, `mutation { startSftpTrial { userErrors { message } } }`, nil)
	login := str(gs.gql(t, tok, `{ viewer { ... on UserViewer { user { sftp { credentials { login } } } } } }`, nil), "viewer", "user", "sftp", "credentials", "login")
	if login == "" {
		t.Fatal("the owner has no SFTP login after starting the trial")
	}
	return login
}
