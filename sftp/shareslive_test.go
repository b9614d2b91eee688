package sftp

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// sharesNode is node with sessions that list their shared folders through
// a service of their own, whose policy enforcer hears changes on the
// node's notification connection and tells the backend of them, as skiff
// serve wires it. Sessions trust their copy of the shared folders for ttl
// when nothing says it changed.
func (f *dedicatedFixture) sharesNode(ttl time.Duration) *dedicatedNode {
	t := f.t
	t.Helper()
	enforcer, err := policy.New(f.db, policy.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	svc := domain.New(f.db)
	svc.Sharing.Policy = enforcer
	n := f.nodeOn(f.db, f.url, func(b *TenantBackend) {
		b.Shares, b.SharesTTL = svc.Sharing, ttl
		enforcer.OnChange(b.SharesChanged)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = enforcer.ListenOn(ctx, pglisten.Start(ctx, f.url, slog.New(slog.DiscardHandler)))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	testkit.Eventually(t, "the node's policy enforcer to listen", enforcer.Listening)
	return n
}

// refusedWithin bounds the wait for a rights change to reach a session on
// another node: far under the minute the session would otherwise trust its
// copy, so only the notification explains a refusal, and far over the
// moments it takes, so that a loaded machine does not fail the test.
const refusedWithin = 10 * time.Second

// A share removed, a preset lowered, a folder deleted or the user moved out
// of the group a folder is shared with, through another node's service,
// reaches an open session on the first operation after the notification:
// its copy of the shared folders would otherwise serve for a minute.
func TestShareChangesReachOpenSessionsAtOnce(t *testing.T) {
	f := newDedicatedFixture(t)
	node := f.sharesNode(time.Minute)
	owner := f.ownerContext(f.acme)
	_, uma := f.userContext(f.uma)
	folder := func(name string, preset policy.Preset) string {
		t.Helper()
		pf, err := f.svc.Sharing.CreateProjectFolder(owner, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Sharing.ShareProjectFolder(owner, sharing.ShareInput{FolderID: pf.ID, UserID: uma, Preset: preset}); err != nil {
			t.Fatal(err)
		}
		return pf.ID
	}
	unshared, lowered, deleted := folder("Unshared", policy.PresetRead), folder("Lowered", policy.PresetWrite), folder("Deleted", policy.PresetRead)
	// A folder shared with a group Uma is in, which gives My Files as her
	// default group does: leaving it changes her rights, not her jail.
	home, err := f.svc.Sharing.GroupOfUser(owner, uma)
	if err != nil {
		t.Fatal(err)
	}
	auditors, err := f.svc.Sharing.CreateGroup(owner, sharing.CreateGroupInput{Name: "Auditors", Permissions: []policy.Permission{policy.SFTPMyFiles}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Sharing.SetUserGroup(owner, uma, auditors.ID); err != nil {
		t.Fatal(err)
	}
	grouped, err := f.svc.Sharing.CreateProjectFolder(owner, "Grouped")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Sharing.ShareProjectFolder(owner, sharing.ShareInput{FolderID: grouped.ID, GroupID: auditors.ID, Preset: policy.PresetRead}); err != nil {
		t.Fatal(err)
	}
	s := f.session(node, "Uma's session", sharedTestIP, f.uma)
	const mount = "/Projects Shared With Me/"
	for _, name := range []string{"Unshared", "Lowered", "Deleted", "Grouped"} {
		if _, err := s.sftp.ReadDir(mount + name); err != nil {
			t.Fatalf("Uma lists %s: %v", name, err)
		}
	}
	upload := func() error {
		w, err := s.sftp.Create(mount + "Lowered/up.txt")
		if err == nil {
			err = w.Close()
		}
		return err
	}
	if err := upload(); err != nil {
		t.Fatalf("Uma uploads to the folder shared WRITE: %v", err)
	}

	refused := func(what string, op func() error) {
		t.Helper()
		start := time.Now()
		for {
			err := op()
			if os.IsPermission(err) || os.IsNotExist(err) {
				t.Logf("%s reached the open session in %v (%v)", what, time.Since(start).Round(time.Millisecond), err)
				return
			}
			if err != nil {
				t.Fatalf("after %s: %v", what, err)
			}
			if time.Since(start) > refusedWithin {
				t.Fatalf("%s: the open session still has its rights %v later", what, refusedWithin)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	listing := func(name string) func() error {
		return func() error { _, err := s.sftp.ReadDir(mount + name); return err }
	}

	if _, err := f.svc.Sharing.UnshareProjectFolder(owner, sharing.UnshareInput{FolderID: unshared, UserID: uma}); err != nil {
		t.Fatal(err)
	}
	refused("the share's removal", listing("Unshared"))

	if _, err := f.svc.Sharing.ShareProjectFolder(owner, sharing.ShareInput{FolderID: lowered, UserID: uma, Preset: policy.PresetRead}); err != nil {
		t.Fatal(err)
	}
	refused("the preset lowered to READ", upload)
	if err := listing("Lowered")(); err != nil {
		t.Errorf("Uma lists the folder now shared READ: %v", err)
	}

	if _, err := f.svc.Sharing.DeleteProjectFolder(owner, deleted); err != nil {
		t.Fatal(err)
	}
	refused("the folder's deletion", listing("Deleted"))

	if _, err := f.svc.Sharing.SetUserGroup(owner, uma, home.ID); err != nil {
		t.Fatal(err)
	}
	refused("leaving the group the folder is shared with", listing("Grouped"))
	s.works(t)
}
