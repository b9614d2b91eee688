package graph_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
)

// rawID is the UUID inside a global ID.
func rawID(t *testing.T, gid string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(gid)
	if err != nil {
		t.Fatal(err)
	}
	_, id, _ := strings.Cut(string(b), ":")
	return id
}

// purgeEnv is an env whose service runs on a test clock and purges from
// file storage in base.
func purgeEnv(t *testing.T) (e *env, clock *testkit.Clock, store *storage.Local, base string) {
	t.Helper()
	e = newEnv(t)
	clock = testkit.NewClock(time.Now())
	e.svc.Now = clock.Now
	base = t.TempDir()
	store, err := storage.NewLocal(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.svc.Files.Files = store
	return e, clock, store, base
}

func TestDeleteUserWithFilesThroughGraphQL(t *testing.T) {
	t.Parallel()
	e, clock, store, base := purgeEnv(t)
	grace := e.svc.Files.Grace

	accountID, owner := e.account("Acme", "owner@acme.example")
	keepID, _ := e.user(owner, "keep@acme.example", "USER")
	goneID, _ := e.user(owner, "gone@acme.example", "USER")
	backID, _ := e.user(owner, "back@acme.example", "USER")
	file := func(gid string) string {
		id := rawID(t, gid)
		r, err := store.UserHome(accountID, id)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := r.(*storage.LocalTree).Root().WriteFile("notes.txt", []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(base, accountID, "users", id, "notes.txt")
	}
	keepFile, goneFile, backFile := file(keepID), file(goneID), file(backID)

	del := `mutation($id: ID!, $f: Boolean) { deleteUser(input: {id: $id, deleteFiles: $f}) { user { deletedAt } userErrors { message } } }`
	e.mustDo(owner, `mutation($id: ID!) { deleteUser(input: {id: $id}) { user { deletedAt } } }`, vars{"id": keepID}, nil)
	e.mustDo(owner, del, vars{"id": goneID, "f": true}, nil)
	e.mustDo(owner, del, vars{"id": backID, "f": true}, nil)

	purge := func() int {
		t.Helper()
		n, err := e.svc.Files.PurgeDue(tenant.SystemContext(context.Background()))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	clock.Advance(grace - time.Hour)
	if n := purge(); n != 0 {
		t.Errorf("purged %d during the grace period", n)
	}
	var restored struct {
		RestoreUser struct {
			User       *struct{ DeletedAt *string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation($id: ID!) { restoreUser(input: {id: $id}) { user { deletedAt } userErrors { message } } }`, vars{"id": backID}, &restored)
	if restored.RestoreUser.User == nil || restored.RestoreUser.User.DeletedAt != nil {
		t.Fatalf("restore: %+v", restored.RestoreUser)
	}
	clock.Advance(2 * time.Hour)
	if n := purge(); n != 1 {
		t.Errorf("purged %d after the grace period, want 1", n)
	}
	for f, want := range map[string]bool{keepFile: true, goneFile: false, backFile: true} {
		if _, err := os.Stat(f); (err == nil) != want || (err != nil && !errors.Is(err, os.ErrNotExist)) {
			t.Errorf("%s: exists %v (%v), want %v", f, err == nil, err, want)
		}
	}
}

func TestDeleteProjectFolderFreesItsFilesThroughGraphQL(t *testing.T) {
	t.Parallel()
	e, clock, store, base := purgeEnv(t)

	accountID, owner := e.account("Acme", "owner@acme.example")
	fid := rawID(t, e.folder(owner, "Plans"))
	r, err := store.ProjectFolder(accountID, fid)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.(*storage.LocalTree).Root().WriteFile("plan.txt", []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	r.Close()
	e.mustDo(owner, `mutation($id: ID!) { deleteProjectFolder(input: {id: $id}) { deletedProjectFolderId } }`,
		vars{"id": globalID("ProjectFolder", fid)}, nil)
	clock.Advance(e.svc.Files.Grace)
	if n, err := e.svc.Files.PurgeDue(tenant.SystemContext(context.Background())); n != 1 || err != nil {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(base, accountID, "folders", fid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the folder after the grace period: %v", err)
	}
}
