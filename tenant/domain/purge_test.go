package domain_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/purge"
)

const grace = 7 * 24 * time.Hour

// purgeWorld is a world whose purge deletes from its storage after grace,
// on the world's clock.
func purgeWorld(t *testing.T) *world {
	w := newWorld(t)
	w.svc.Now = w.clock.Now
	w.svc.Files.Grace = grace
	w.svc.Files.Files = w.store
	return w
}

// purgeDue runs one purge pass as serve does and returns how many trees went.
func purgeDue(t *testing.T, svc *domain.Domain) int {
	t.Helper()
	n, err := svc.Files.PurgeDue(tenant.SystemContext(context.Background()))
	if err != nil {
		t.Fatalf("PurgeDue: %v", err)
	}
	return n
}

// putFile writes a file (in a subfolder) into a tree on disk and returns its path.
func putFile(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "reports", "q3.txt")
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("numbers"), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantExists(t *testing.T, what, p string, want bool) {
	t.Helper()
	_, err := os.Stat(p)
	if got := err == nil; got != want {
		t.Errorf("%s: exists = %v (%v), want %v", what, got, err, want)
	}
}

func TestDeleteUserWithFilesPurgesHomeAfterGrace(t *testing.T) {
	t.Parallel()
	w := purgeWorld(t)
	u := w.user("Uma", tenant.RoleUser)
	home := w.home(u)
	file := putFile(t, home)
	if _, err := w.svc.People.DeleteUser(w.as(w.owner), u.ID, true); err != nil {
		t.Fatal(err)
	}
	if n := purgeDue(t, w.svc); n != 0 {
		t.Errorf("purged %d at once, want 0", n)
	}
	w.clock.Clock.Advance(grace - time.Second)
	if n := purgeDue(t, w.svc); n != 0 {
		t.Errorf("purged %d a second before the grace period ends, want 0", n)
	}
	wantExists(t, "the file during the grace period", file, true)
	w.clock.Clock.Advance(2 * time.Second)
	if n := purgeDue(t, w.svc); n != 1 {
		t.Errorf("purged %d after the grace period, want 1", n)
	}
	wantExists(t, "the home after the grace period", home, false)
	if n := purgeDue(t, w.svc); n != 0 {
		t.Errorf("a second pass purged %d, want 0", n)
	}
	// The purge is in the account's audit trail, by the system.
	events, err := w.svc.Audit.Events(w.as(w.owner), w.account.ID, audit.Filter{Kinds: []string{"files.purged"}}, tenant.Order{}, tenant.Page{First: 5})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events.Items {
		if e.Kind == "files.purged" && e.TargetID != nil && *e.TargetID == u.ID && e.ActorKind == "SYSTEM" {
			found = true
		}
	}
	if !found {
		t.Errorf("no files.purged event for the user in %+v", events.Items)
	}
	// Restoring after the purge brings the user back with an empty home.
	if _, err := w.svc.People.RestoreUser(w.as(w.owner), u.ID); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(w.home(u)); err != nil || len(entries) != 0 {
		t.Errorf("home after restoring a purged user: %v, %v", entries, err)
	}
}

func TestRestoreWithinGraceCancelsThePurge(t *testing.T) {
	t.Parallel()
	w := purgeWorld(t)
	u := w.user("Uma", tenant.RoleUser)
	file := putFile(t, w.home(u))
	if _, err := w.svc.People.DeleteUser(w.as(w.owner), u.ID, true); err != nil {
		t.Fatal(err)
	}
	w.clock.Clock.Advance(grace / 2)
	if _, err := w.svc.People.RestoreUser(w.as(w.owner), u.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.Clock.Advance(2 * grace)
	if n := purgeDue(t, w.svc); n != 0 {
		t.Errorf("purged %d after a restore, want 0", n)
	}
	wantExists(t, "the file of a restored user", file, true)

	// Deleting again (keeping files this time) schedules nothing.
	if _, err := w.svc.People.DeleteUser(w.as(w.owner), u.ID, false); err != nil {
		t.Fatal(err)
	}
	w.clock.Clock.Advance(2 * grace)
	if n := purgeDue(t, w.svc); n != 0 {
		t.Errorf("purged %d after a delete that keeps files, want 0", n)
	}
	wantExists(t, "the file of a user deleted without their files", file, true)
}

func TestDeletedFolderFilesPurgedAfterGrace(t *testing.T) {
	t.Parallel()
	w := purgeWorld(t)
	f := w.folder(w.owner, "Plans")
	kept := w.folder(w.owner, "Kept")
	dir := w.disk(f)
	file := putFile(t, dir)
	keptFile := putFile(t, w.disk(kept))
	if _, err := w.svc.Sharing.DeleteProjectFolder(w.as(w.owner), f.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.Clock.Advance(grace - time.Minute)
	if n := purgeDue(t, w.svc); n != 0 {
		t.Errorf("purged %d during the grace period, want 0", n)
	}
	wantExists(t, "the deleted folder's file during the grace period", file, true)
	w.clock.Clock.Advance(time.Minute)
	if n := purgeDue(t, w.svc); n != 1 {
		t.Errorf("purged %d after the grace period, want 1", n)
	}
	wantExists(t, "the deleted folder after the grace period", dir, false)
	wantExists(t, "another folder's file", keptFile, true)
}

func TestTwoPurgersAtOnce(t *testing.T) {
	t.Parallel()
	w := purgeWorld(t)
	other := otherNode(t, w)
	var homes []string
	for _, name := range []string{"A", "B", "C", "D", "E", "F", "G", "H"} {
		u := w.user(name, tenant.RoleUser)
		homes = append(homes, w.home(u))
		putFile(t, homes[len(homes)-1])
		if _, err := w.svc.People.DeleteUser(w.as(w.owner), u.ID, true); err != nil {
			t.Fatal(err)
		}
		f := w.folder(w.owner, "Folder "+name)
		homes = append(homes, w.disk(f))
		putFile(t, homes[len(homes)-1])
		if _, err := w.svc.Sharing.DeleteProjectFolder(w.as(w.owner), f.ID); err != nil {
			t.Fatal(err)
		}
	}
	w.clock.Clock.Advance(grace)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	errs := make([]error, 4)
	for i := range counts {
		svc := w.svc
		if i%2 == 1 {
			svc = other
		}
		wg.Go(func() { counts[i], errs[i] = svc.Files.PurgeDue(tenant.SystemContext(context.Background())) })
	}
	wg.Wait()
	total := 0
	for i := range counts {
		if errs[i] != nil {
			t.Errorf("purger %d: %v", i, errs[i])
		}
		total += counts[i]
	}
	if total != len(homes) {
		t.Errorf("the purgers purged %v, %d in all; want %d", counts, total, len(homes))
	}
	for _, h := range homes {
		wantExists(t, "a purged tree", h, false)
	}
}

// otherNode is a second service on w's database and storage, as another
// node (or the same one after a restart) would be: its own connections,
// nothing shared in memory.
func otherNode(t *testing.T, w *world) *domain.Domain {
	t.Helper()
	db, err := tenant.Open(context.Background(), w.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := domain.New(db)
	svc.Now = w.clock.Now
	svc.Files.Files = w.store
	return svc
}

func TestPendingPurgeSurvivesARestart(t *testing.T) {
	t.Parallel()
	w := purgeWorld(t)
	u := w.user("Uma", tenant.RoleUser)
	home := w.home(u)
	putFile(t, home)
	if _, err := w.svc.People.DeleteUser(w.as(w.owner), u.ID, true); err != nil {
		t.Fatal(err)
	}
	// The grace period is fixed when the user is deleted: a restart with a
	// longer --purge-grace does not move it.
	restarted := otherNode(t, w)
	restarted.Files.Grace = 10 * grace
	w.clock.Clock.Advance(grace)
	if n := purgeDue(t, restarted); n != 1 {
		t.Errorf("the restarted service purged %d, want 1", n)
	}
	wantExists(t, "the home after the restarted service's purge", home, false)
}

// flakyFiles fails its first removal, as a full or read-only disk would.
type flakyFiles struct {
	purge.Files
	mu     sync.Mutex
	failed bool
}

func (f *flakyFiles) RemoveUserHome(accountID, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failed {
		f.failed = true
		return errors.New("disk on fire")
	}
	return f.Files.RemoveUserHome(accountID, userID)
}

func TestFailedPurgeIsRetried(t *testing.T) {
	t.Parallel()
	w := purgeWorld(t)
	w.svc.Files.Files = &flakyFiles{Files: w.store}
	u := w.user("Uma", tenant.RoleUser)
	home := w.home(u)
	putFile(t, home)
	if _, err := w.svc.People.DeleteUser(w.as(w.owner), u.ID, true); err != nil {
		t.Fatal(err)
	}
	w.clock.Clock.Advance(grace)
	if _, err := w.svc.Files.PurgeDue(tenant.SystemContext(context.Background())); err == nil {
		t.Error("a failed removal was not reported")
	}
	wantExists(t, "the home after a failed purge", home, true)
	if n := purgeDue(t, w.svc); n != 1 {
		t.Errorf("the retry purged %d, want 1", n)
	}
	wantExists(t, "the home after the retry", home, false)
}

func TestOnlyTheSystemPurges(t *testing.T) {
	t.Parallel()
	w := purgeWorld(t)
	_, err := w.svc.Files.PurgeDue(w.as(w.owner))
	wantCode(t, "an owner purging", err, tenant.EForbidden, "")
}
