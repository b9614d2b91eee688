package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/testkit"
)

// serveFails runs `skiff serve` with cmd and returns the error it stops
// with at start-up. The error is the whole story: the server logged no
// error of its own on the way out (an operator would chase it), and nothing
// it started is left running to log after Run returned.
func serveFails(t *testing.T, cmd *ServeCmd) error {
	t.Helper()
	cmd.ready = func(string, []string) { t.Error("serve started") }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logs testkit.SyncBuffer
	err := cmd.Run(ctx, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		t.Fatal("serve ran and stopped without an error")
	}
	atReturn := logs.String()
	time.Sleep(300 * time.Millisecond) // what is still running would log by now
	if after := logs.String(); after != atReturn {
		t.Errorf("serve logged after it returned %q:\n%s", err, strings.TrimPrefix(after, atReturn))
	}
	for line := range strings.Lines(atReturn) {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("serve, stopping with %q, also logged an error:\n%s", err, line)
		}
	}
	return err
}

// With an external database, mail is never written to files unless asked:
// no --smtp-url is a start-up error naming the setting.
func TestExternalDatabaseNeedsMailSetting(t *testing.T) {
	t.Parallel()
	cmd := testServeCmd(t, newDataDir(t))
	cmd.DatabaseURL, cmd.Runtime.AllowUnsafeRole = pgtest.NewDB(t), true
	err := serveFails(t, cmd)
	if !strings.Contains(err.Error(), "--smtp-url (SKIFF_SMTP_URL) is not set") || !strings.Contains(err.Error(), "file:///") {
		t.Errorf("got %v, want the missing mail setting explained", err)
	}
	if _, err := os.Stat(filepath.Join(cmd.DataDir, "mail")); err == nil {
		t.Error("a mail folder was made anyway")
	}
}

func TestMailTarget(t *testing.T) {
	for _, c := range []struct {
		url      string
		embedded bool
		smtp     string
		dir      string
		bad      bool
	}{
		{url: "", embedded: true, dir: "data/mail"},
		{url: "", embedded: false, bad: true},
		{url: "file:///var/mail/skiff", dir: "/var/mail/skiff"},
		{url: "file://host/var/mail", bad: true},
		{url: "file:relative", bad: true},
		{url: "smtp://mx:25", smtp: "smtp://mx:25"},
	} {
		smtp, dir, err := MailFlags{SMTPURL: c.url}.mailTarget("data", c.embedded)
		if (err != nil) != c.bad || smtp != c.smtp || dir != c.dir {
			t.Errorf("%q (embedded %v): %q %q %v", c.url, c.embedded, smtp, dir, err)
		}
	}
}

// The first start marks the storage directory; later starts refuse a
// missing directory, an unmarked one (a mount that failed) and another
// deployment's, and /readyz fails when the marker disappears under a
// running node.
func TestStorageMarker(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDB(t)
	base := t.TempDir()
	storage := filepath.Join(base, "files")
	on := func(dir string) func(*ServeCmd) {
		return func(c *ServeCmd) {
			c.DatabaseURL, c.Runtime.AllowUnsafeRole = dbURL, true
			c.Mail.SMTPURL, c.Storage.Dir = "file://"+filepath.Join(base, "mail"), dir
		}
	}
	withStorage := func(dir string) *ServeCmd {
		cmd := testServeCmd(t, newDataDir(t))
		on(dir)(cmd)
		return cmd
	}
	s := startServe(t, newDataDir(t), on(storage))
	marker, err := readStorageMarker(filepath.Join(storage, storageMarkerFile))
	if err != nil {
		t.Fatalf("no marker after the first start: %v", err)
	}
	s.stop()

	missing := filepath.Join(base, "not-mounted")
	if err := serveFails(t, withStorage(missing)); !strings.Contains(err.Error(), "no marker file") ||
		!strings.Contains(err.Error(), "not mounted") || exitCode(err) != exitConfig {
		t.Errorf("missing storage directory: %v (exit %d, as OPERATIONS.md's Files table says: %d)", err, exitCode(err), exitConfig)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("the missing storage directory was created")
	}
	empty := filepath.Join(base, "empty-mount")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := serveFails(t, withStorage(empty)); !strings.Contains(err.Error(), "no marker file") {
		t.Errorf("unmarked storage directory: %v", err)
	}
	other := filepath.Join(base, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, storageMarkerFile), []byte(strings.Repeat("ab", 16)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := serveFails(t, withStorage(other)); !strings.Contains(err.Error(), "another deployment's storage") || exitCode(err) != exitConfig {
		t.Errorf("another deployment's storage: %v", err)
	}

	s = startServe(t, newDataDir(t), on(storage))
	if got, _ := readStorageMarker(filepath.Join(storage, storageMarkerFile)); got != marker {
		t.Errorf("marker changed from %s to %s", marker, got)
	}
	readyz := func() int {
		res, err := http.Get(s.http + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz: %d", code)
	}
	if err := os.Remove(filepath.Join(storage, storageMarkerFile)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "/readyz to fail without the marker", func() bool { return readyz() == http.StatusServiceUnavailable })
}
