package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/migrations"
)

// migrate down refuses a target it cannot roll back to, saying why, with
// the configuration exit code: a negative version before connecting, and
// one above the schema's version (that would be "up") without touching the
// schema.
func TestMigrateDownRefusesTargets(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := (&MigrateDownCmd{To: -1}).Run(ctx, log)
	if exitCode(err) != exitConfig || err == nil || !strings.HasPrefix(err.Error(), "--to: -1 is negative") {
		t.Errorf("--to=-1: exit %d, %v", exitCode(err), err)
	}

	db := DatabaseFlags{DatabaseURL: pgtest.NewDB(t)}
	latest := migrations.Latest()
	err = (&MigrateDownCmd{DatabaseFlags: db, To: latest + 1}).Run(ctx, log)
	if exitCode(err) != exitConfig || err == nil || !strings.Contains(err.Error(), "is above the database schema's version") {
		t.Errorf("--to above the schema: exit %d, %v", exitCode(err), err)
	}
	if err := (&MigrateDownCmd{DatabaseFlags: db, To: latest}).Run(ctx, log); err != nil {
		t.Errorf("--to the schema's own version: %v", err)
	}
}
