package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/skiffhq/skiff/migrations"
)

// Every migration's Down undoes its Up far enough for the Up to run again,
// and ReadSchema follows the schema down and up: nothing on an empty
// database, "older than 00075" below it, the version and compatibility from
// it on.
func TestDownAndUpAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)
	if s, err := migrations.ReadSchema(ctx, db); err != nil || s != (migrations.Schema{}) {
		t.Fatalf("empty database: %+v, %v", s, err)
	}
	if err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	latest := migrations.Latest()
	if want := newestFile(t); latest != want {
		t.Errorf("Latest() = %d, want %d", latest, want)
	}
	if s, err := migrations.ReadSchema(ctx, db); err != nil || s.Current != latest || s.CompatibleFrom != 0 {
		t.Errorf("migrated: %+v, %v", s, err)
	}
	if err := migrations.DownTo(ctx, db, 60, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.ReadSchema(ctx, db); !errors.Is(err, migrations.ErrSchemaUnreadable) {
		t.Errorf("at 60: %v, want ErrSchemaUnreadable", err)
	}
	if err := migrations.DownTo(ctx, db, 0, nil); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	if cur, _, err := migrations.Version(ctx, db); err != nil || cur != 0 {
		t.Errorf("after down to 0: version %d, %v", cur, err)
	}
	if err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if s, err := migrations.ReadSchema(ctx, db); err != nil || s.Current != latest {
		t.Errorf("up again: %+v, %v", s, err)
	}
}
