package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
)

// While `skiff serve` runs on its private PostgreSQL, the admin and migrate
// commands on the same --data-dir use that server instead of failing on
// its lock file, and leave it running; a second serve there is refused
// with what to do.
func TestCommandsBesideServe(t *testing.T) {
	t.Parallel()
	dataDir := newDataDir(t)
	s := startServe(t, dataDir)
	ctx := context.Background()
	var logs testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	flags := DatabaseFlags{DataDir: dataDir}

	staff := &CreateStaffCmd{DatabaseFlags: flags, Email: "second@skiff.example", Name: "Second", Password: "second password"}
	if err := staff.Run(ctx, log); err != nil {
		t.Fatalf("admin create-staff beside serve: %v\n%s", err, logs.String())
	}
	if err := (&MigrateStatusCmd{DatabaseFlags: flags}).Run(ctx, log); err != nil {
		t.Fatalf("migrate status beside serve: %v\n%s", err, logs.String())
	}
	if err := (&MigrateUpCmd{DatabaseFlags: flags}).Run(ctx, log); err != nil {
		t.Fatalf("migrate beside serve: %v\n%s", err, logs.String())
	}
	// Rolling back is refused: it would drop what the running serve uses.
	if err := (&MigrateDownCmd{DatabaseFlags: flags, To: 1}).Run(ctx, log); err == nil || !strings.Contains(err.Error(), "already runs") {
		t.Errorf("migrate down beside serve: %v; want it refused", err)
	}
	if !strings.Contains(logs.String(), "private PostgreSQL already running") {
		t.Errorf("the commands did not say they used serve's PostgreSQL:\n%s", logs.String())
	}
	// serve still runs on its database, which has the new login.
	res, err := http.Get(s.http + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/readyz after the commands: %d", res.StatusCode)
	}
	s.login(t, "second@skiff.example", "second password")

	err = serveFails(t, testServeCmd(t, dataDir))
	if !strings.Contains(err.Error(), "already runs") || !strings.Contains(err.Error(), "--data-dir (SKIFF_DATA_DIR)") {
		t.Errorf("a second serve on the data folder: %v", err)
	}
}
