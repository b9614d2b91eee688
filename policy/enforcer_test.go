package policy_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"

	"github.com/skiffhq/skiff/policy"
)

// acme is an account with one user per interesting situation and a project
// folder shared in every way there is.
type acme struct {
	id                               string
	owner, admin, pro, assoc, jailed string
	contactsOnly, stranger           string // stranger: a user of another account
	strangerAccount                  string
	folder, otherFolder              string
	jailedGroup                      string
}

func newAcme(f *fixture) *acme {
	a := &acme{id: f.account("Acme")}
	a.jailedGroup = f.group(a.id, "JAILED")
	a.owner = f.user(a.id, "owner@acme.example", "OWNER", "")
	// An administrator whose own group may do nothing: the role still manages.
	a.admin = f.user(a.id, "admin@acme.example", "ADMIN", a.jailedGroup)
	a.pro = f.user(a.id, "pro@acme.example", "USER", "")
	a.assoc = f.user(a.id, "assoc@acme.example", "USER", f.group(a.id, "ASSOCIATE"))
	a.jailed = f.user(a.id, "jailed@acme.example", "USER", a.jailedGroup)
	a.contactsOnly = f.user(a.id, "contacts@acme.example", "USER", f.customGroup(a.id, "Front desk", policy.ManageContacts))
	a.folder = f.folder(a.id, "Plans", a.pro)
	f.shareUser(a.id, a.folder, a.pro, policy.PresetOwner)
	f.shareUser(a.id, a.folder, a.assoc, policy.PresetRead)
	f.shareGroup(a.id, a.folder, a.jailedGroup, policy.PresetWrite)

	a.strangerAccount = f.account("Globex")
	a.stranger = f.user(a.strangerAccount, "owner@globex.example", "OWNER", "")
	a.otherFolder = f.folder(a.strangerAccount, "Secret", a.stranger)
	f.shareUser(a.strangerAccount, a.otherFolder, a.stranger, policy.PresetOwner)
	return a
}

func TestDecisions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	e := f.enforcer(policy.Options{})
	folder := policy.FolderObject(a.folder)
	perm := func(p policy.Permission) string { return string(p) }
	right := func(r policy.Right) string { return string(r) }

	cases := []struct {
		name                    string
		user, account, obj, act string
		want                    bool
	}{
		{"Pro has My Files", a.pro, a.id, policy.AccountObject, perm(policy.SFTPMyFiles), true},
		{"Associate has My Files", a.assoc, a.id, policy.AccountObject, perm(policy.SFTPMyFiles), true},
		{"Jailed Users have no My Files", a.jailed, a.id, policy.AccountObject, perm(policy.SFTPMyFiles), false},
		{"a custom group without it has no My Files", a.contactsOnly, a.id, policy.AccountObject, perm(policy.SFTPMyFiles), false},
		{"Pro creates folders", a.pro, a.id, policy.AccountObject, perm(policy.CreateProjectFolders), true},
		{"Associates create folders", a.assoc, a.id, policy.AccountObject, perm(policy.CreateProjectFolders), true},
		{"Associates do not share", a.assoc, a.id, policy.AccountObject, perm(policy.ShareProjectFolders), false},
		{"Pro shares", a.pro, a.id, policy.AccountObject, perm(policy.ShareProjectFolders), true},
		{"the custom group manages contacts", a.contactsOnly, a.id, policy.AccountObject, perm(policy.ManageContacts), true},
		{"Associates do not manage contacts", a.assoc, a.id, policy.AccountObject, perm(policy.ManageContacts), false},
		{"a jailed admin still manages contacts", a.admin, a.id, policy.AccountObject, perm(policy.ManageContacts), true},
		{"a jailed admin is still jailed", a.admin, a.id, policy.AccountObject, perm(policy.SFTPMyFiles), false},
		{"owners manage groups", a.owner, a.id, policy.GroupsObject, policy.ManageGroups, true},
		{"admins manage groups", a.admin, a.id, policy.GroupsObject, policy.ManageGroups, true},
		{"users do not manage groups", a.pro, a.id, policy.GroupsObject, policy.ManageGroups, false},

		{"READ lists", a.assoc, a.id, folder, right(policy.List), true},
		{"READ downloads", a.assoc, a.id, folder, right(policy.Download), true},
		{"READ does not upload", a.assoc, a.id, folder, right(policy.Upload), false},
		{"a group's WRITE uploads", a.jailed, a.id, folder, right(policy.Upload), true},
		{"a group's WRITE renames", a.jailed, a.id, folder, right(policy.Rename), true},
		{"WRITE does not share", a.jailed, a.id, folder, right(policy.Share), false},
		{"OWNER manages", a.pro, a.id, folder, right(policy.Manage), true},
		{"the account's owner manages any folder", a.owner, a.id, folder, right(policy.Manage), true},
		{"but reads only what is shared with them", a.owner, a.id, folder, right(policy.Download), false},
		{"not shared: nothing", a.contactsOnly, a.id, folder, right(policy.List), false},

		{"another account's user, in our account", a.stranger, a.id, folder, right(policy.List), false},
		{"another account's user, our folder named in their account", a.stranger, a.strangerAccount, folder, right(policy.Manage), false},
		{"our user, in another account", a.pro, a.strangerAccount, policy.FolderObject(a.otherFolder), right(policy.List), false},
		{"our owner cannot manage another account's groups", a.owner, a.strangerAccount, policy.GroupsObject, policy.ManageGroups, false},
		{"a malformed user ID", "user:" + a.pro, a.id, folder, right(policy.List), false},
		{"a malformed account ID", a.pro, "*", folder, right(policy.List), false},
		{"owners manage only folders that exist", a.owner, a.id, policy.FolderObject("0b8c7a44-3f6e-4a57-9a43-6a3b9f1d2c11"), right(policy.Manage), false},
		{"owners manage all folders", a.owner, a.id, policy.FoldersObject, right(policy.Manage), true},
		{"users do not manage all folders", a.pro, a.id, policy.FoldersObject, right(policy.Manage), false},
		{"a subject is not an object", a.owner, a.id, "role:admin", right(policy.Manage), false},
	}
	for _, c := range cases {
		if got := may(t, e, c.user, c.account, c.obj, c.act); got != c.want {
			t.Errorf("%s: May = %v, want %v", c.name, got, c.want)
		}
	}

	rights := func(user string) map[string][]policy.Right {
		t.Helper()
		got, err := e.FolderRights(context.Background(), user, a.id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := map[string][]policy.Right{a.folder: {policy.List, policy.Download}}
	if got := rights(a.assoc); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Associate's folders = %v, want %v", got, want)
	}
	// The owner may manage every folder but none was shared with them.
	if got := rights(a.owner); len(got) != 0 {
		t.Errorf("the owner's shared folders = %v, want none", got)
	}
	if got := rights(a.jailed)[a.folder]; !slices.Equal(got, policy.PresetWrite.Rights()) {
		t.Errorf("the jailed user's rights = %v, want WRITE's", got)
	}
	if got, err := e.RightsIn(context.Background(), a.pro, a.id, a.folder); err != nil || !slices.Equal(got, policy.Rights()) {
		t.Errorf("the folder owner's rights = %v, %v; want all", got, err)
	}
}

func TestDeletedUsersAndFoldersGrantNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	e := f.enforcer(policy.Options{})
	folder := policy.FolderObject(a.folder)
	if !may(t, e, a.assoc, a.id, folder, string(policy.Download)) {
		t.Fatal("the share does not work to begin with")
	}
	f.exec(`UPDATE users SET deleted_at = now() WHERE id = $1`, a.assoc)
	e.Invalidate(a.id)
	if may(t, e, a.assoc, a.id, folder, string(policy.Download)) || may(t, e, a.assoc, a.id, policy.AccountObject, string(policy.SFTPMyFiles)) {
		t.Error("a deleted user keeps their rights")
	}
	f.exec(`UPDATE project_folders SET deleted_at = now() WHERE id = $1`, a.folder)
	e.Invalidate(a.id)
	if may(t, e, a.pro, a.id, folder, string(policy.List)) {
		t.Error("a deleted folder's share still counts")
	}
	if got, _ := e.FolderRights(context.Background(), a.jailed, a.id); len(got) != 0 {
		t.Errorf("a deleted folder is still listed: %v", got)
	}
}

func TestJailedUsersKeepTheJailInTheDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	if _, err := f.db.Exec(`UPDATE groups SET permissions = '{SFTP_MY_FILES}' WHERE id = $1`, a.jailedGroup); err == nil {
		t.Fatal("Jailed Users was given My Files")
	}
	if _, err := f.db.Exec(`UPDATE groups SET permissions = '{FLY}' WHERE id = $1`, a.jailedGroup); err == nil {
		t.Fatal("a permission outside the vocabulary was stored")
	}
}

// A change committed through one node's database connection reaches a second
// enforcer by notification alone: MaxAge is far too long to explain it.
func TestChangesReachOtherNodes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	slow := policy.Options{MaxAge: time.Hour, ListeningMaxAge: time.Hour}
	node1, node2 := f.enforcer(slow), f.enforcer(slow)
	f.listen(node1)
	f.listen(node2)
	folder := policy.FolderObject(a.folder)
	upload := string(policy.Upload)
	for _, e := range []*policy.Enforcer{node1, node2} {
		if may(t, e, a.assoc, a.id, folder, upload) {
			t.Fatal("READ uploads")
		}
	}

	f.shareUser(a.id, a.folder, a.assoc, policy.PresetWrite)
	testkit.Eventually(t, "node 2 to see the new preset", func() bool { return may(t, node2, a.assoc, a.id, folder, upload) })
	testkit.Eventually(t, "node 1 to see the new preset", func() bool { return may(t, node1, a.assoc, a.id, folder, upload) })

	// A change of group (not of a share) travels the same way.
	f.exec(`UPDATE users SET group_id = $2 WHERE id = $1`, a.assoc, a.jailedGroup)
	testkit.Eventually(t, "node 2 to see the jail", func() bool {
		return !may(t, node2, a.assoc, a.id, policy.AccountObject, string(policy.SFTPMyFiles))
	})

	// A rolled-back change notifies no one: the next committed change is
	// what node 2 sees, and the rolled-back one never shows.
	tx, err := f.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE groups SET permissions = '{MANAGE_CONTACTS}' WHERE id = $1`, a.jailedGroup); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	f.exec(`DELETE FROM folder_shares WHERE folder_id = $1 AND group_id = $2`, a.folder, a.jailedGroup)
	testkit.Eventually(t, "node 2 to see the share removed", func() bool {
		return !may(t, node2, a.jailed, a.id, folder, string(policy.Download))
	})
	if may(t, node2, a.jailed, a.id, policy.AccountObject, string(policy.ManageContacts)) {
		t.Error("a rolled-back change took effect")
	}
}

// OnChange hears every change the enforcer learns of, by notification from
// another node's commit or by a reconnection (every account), only after
// the enforcer dropped its copy: what the listener asks then is the new
// policy. MaxAge is far too long to explain the answers.
func TestOnChangeHearsChangesAfterTheCopyIsDropped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	e := f.enforcer(policy.Options{MaxAge: time.Hour, ListeningMaxAge: time.Hour})
	type heard struct {
		account string
		rights  []policy.Right // the associate's in the folder, asked from the callback
	}
	changes := make(chan heard, 16)
	e.OnChange(func(accountID string) {
		rights, err := e.RightsIn(context.Background(), a.assoc, a.id, a.folder)
		if err != nil {
			t.Error(err)
		}
		changes <- heard{accountID, rights}
	})
	f.listen(e)
	if got, err := e.RightsIn(context.Background(), a.assoc, a.id, a.folder); err != nil || slices.Contains(got, policy.Upload) {
		t.Fatalf("READ share: %v, %v", got, err)
	}
	next := func(what string) heard {
		t.Helper()
		select {
		case h := <-changes:
			return h
		case <-time.After(10 * time.Second):
			t.Fatalf("OnChange not told of %s", what)
		}
		return heard{}
	}
	// The listener's first resync (every account) came as it connected.
	f.shareUser(a.id, a.folder, a.assoc, policy.PresetWrite)
	h := next("the share's new preset")
	for h.account == "" {
		h = next("the share's new preset")
	}
	if h.account != a.id || !slices.Contains(h.rights, policy.Upload) {
		t.Fatalf("told %q with the associate's rights %v; want %s and WRITE's", h.account, h.rights, a.id)
	}

	// Notifications sent while the connection is down are lost: the
	// reconnection tells of every account.
	if _, err := f.db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`); err != nil {
		t.Fatal(err)
	}
	for next("the reconnection").account != "" {
	}
}

// After the notification connection drops, changes made while it was down
// are not lost: the reconnection makes every account be read again.
func TestChangesSurviveAReconnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	e := f.enforcer(policy.Options{MaxAge: time.Hour, ListeningMaxAge: time.Hour})
	f.listen(e)
	folder := policy.FolderObject(a.folder)
	if may(t, e, a.assoc, a.id, folder, string(policy.Upload)) {
		t.Fatal("READ uploads")
	}
	var killed int
	if err := f.db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listening connections: %v", killed, err)
	}
	f.shareUser(a.id, a.folder, a.assoc, policy.PresetWrite)
	testkit.Eventually(t, "the change made while disconnected", func() bool { return may(t, e, a.assoc, a.id, folder, string(policy.Upload)) })
	testkit.Eventually(t, "the enforcer to listen again", e.Listening)
}

// Without notifications an enforcer trusts what it read for MaxAge only.
func TestWithoutListeningPoliciesAreReadAgainAfterMaxAge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	c := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := f.enforcer(policy.Options{MaxAge: time.Second, Now: c.Now})
	folder := policy.FolderObject(a.folder)
	if may(t, e, a.assoc, a.id, folder, string(policy.Upload)) {
		t.Fatal("READ uploads")
	}
	f.shareUser(a.id, a.folder, a.assoc, policy.PresetWrite)
	c.Advance(time.Second)
	if !may(t, e, a.assoc, a.id, folder, string(policy.Upload)) {
		t.Error("a change is not seen after MaxAge")
	}
}

// A user created after their account was read is known at once: a decision
// about a user the policy has never heard of reads the account again.
func TestNewUsersAreKnownAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	c := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := f.enforcer(policy.Options{MaxAge: time.Hour, Now: c.Now})
	if !may(t, e, a.pro, a.id, policy.AccountObject, string(policy.SFTPMyFiles)) {
		t.Fatal("Pro has no My Files")
	}
	c.Advance(time.Second)
	newcomer := f.user(a.id, "new@acme.example", "USER", "")
	if !may(t, e, newcomer, a.id, policy.AccountObject, string(policy.SFTPMyFiles)) {
		t.Error("a new user of the default group has no My Files")
	}
}

func TestFolderRightsAgreeWithMay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	// A second folder: shared with Associates as SHARE and with one of them
	// directly as LIST, so the rights are the union.
	second := f.folder(a.id, "Budget", a.owner)
	f.shareGroup(a.id, second, f.group(a.id, "ASSOCIATE"), policy.PresetShare)
	f.shareUser(a.id, second, a.assoc, policy.PresetList)
	f.shareUser(a.id, second, a.admin, policy.PresetRead)
	e := f.enforcer(policy.Options{})
	for _, user := range []string{a.owner, a.admin, a.pro, a.assoc, a.jailed, a.contactsOnly} {
		got, err := e.FolderRights(context.Background(), user, a.id)
		if err != nil {
			t.Fatal(err)
		}
		for _, folder := range []string{a.folder, second} {
			rights, shared := got[folder]
			for _, r := range policy.Rights() {
				want := may(t, e, user, a.id, policy.FolderObject(folder), string(r))
				if !shared {
					// Not shared: only what the role allows on any folder.
					if want && r != policy.Manage && r != policy.Share {
						t.Errorf("user %s may %s in folder %s, which is not shared with them", user, r, folder)
					}
					continue
				}
				if slices.Contains(rights, r) != want {
					t.Errorf("user %s, folder %s: FolderRights says %v, May(%s) says %v", user, folder, rights, r, want)
				}
			}
		}
	}
	// The admin (jailed, with READ on Budget) gets READ plus their role's rights.
	got, _ := e.FolderRights(context.Background(), a.admin, a.id)
	if want := []policy.Right{policy.List, policy.Download, policy.Share, policy.Manage}; !slices.Equal(got[second], want) {
		t.Errorf("admin's rights in Budget = %v, want %v", got[second], want)
	}
}

// RightsInFolders answers for a page of folders what RightsIn answers for
// each: shared folders, folders only the role reaches, a deleted folder,
// another account's folder, a missing one and a malformed ID.
func TestRightsInFoldersAgreeWithRightsIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := newAcme(f)
	second := f.folder(a.id, "Budget", a.owner)
	f.shareGroup(a.id, second, f.group(a.id, "ASSOCIATE"), policy.PresetShare)
	f.shareUser(a.id, second, a.assoc, policy.PresetList)
	f.shareUser(a.id, second, a.admin, policy.PresetRead)
	unshared := f.folder(a.id, "Nobody's", a.owner)
	deleted := f.folder(a.id, "Gone", a.owner)
	f.shareUser(a.id, deleted, a.pro, policy.PresetOwner)
	f.exec(`UPDATE project_folders SET deleted_at = now() WHERE id = $1`, deleted)
	folders := []string{a.folder, second, unshared, deleted, a.otherFolder, "6b1d2f0e-0000-4000-8000-000000000000", "not-a-folder"}
	e := f.enforcer(policy.Options{})
	ctx := context.Background()
	for _, user := range []string{a.owner, a.admin, a.pro, a.assoc, a.jailed, a.contactsOnly, a.stranger} {
		got, err := e.RightsInFolders(ctx, user, a.id, folders)
		if err != nil {
			t.Fatal(err)
		}
		for _, folder := range folders {
			want, err := e.RightsIn(ctx, user, a.id, folder)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got[folder], want) {
				t.Errorf("user %s, folder %s: RightsInFolders says %v, RightsIn %v", user, folder, got[folder], want)
			}
		}
	}
	// The owner reaches the unshared folder through their role only.
	got, _ := e.RightsInFolders(ctx, a.owner, a.id, []string{unshared})
	if want := []policy.Right{policy.Share, policy.Manage}; !slices.Equal(got[unshared], want) {
		t.Errorf("owner's rights in an unshared folder = %v, want %v", got[unshared], want)
	}
}
