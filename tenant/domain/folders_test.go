package domain_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/sharing"
)

func folderNames(c *tenant.Connection[*sharing.ProjectFolder]) []string {
	var out []string
	for _, f := range c.Items {
		out = append(out, f.Name)
	}
	return out
}

func TestCreateProjectFolder(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := w.as(w.owner)
	for _, name := range []string{"", "   ", "a/b", `a\b`, ".", "..", ".skiff-upload-x", "tab\there", strings.Repeat("é", 128)} {
		_, err := w.svc.Sharing.CreateProjectFolder(ctx, name)
		wantCode(t, "folder name "+name, err, tenant.EInvalid, "name")
	}
	f, err := w.svc.Sharing.CreateProjectFolder(ctx, "  Q3 plans – draft ")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "Q3 plans – draft" || f.CreatedBy != w.owner.ID {
		t.Errorf("created %+v", f)
	}
	// The creator has it as OWNER.
	mine, err := w.svc.Sharing.ProjectsSharedWith(ctx, w.owner.ID, tenant.Order{}, tenant.Page{})
	if err != nil || len(mine.Items) != 1 || mine.Items[0].Folder.ID != f.ID || mine.Items[0].Preset != policy.PresetOwner ||
		!slices.Equal(mine.Items[0].Rights, policy.Rights()) {
		t.Fatalf("the creator's projects = %+v, %v", mine, err)
	}
	// Names need not be unique.
	if _, err := w.svc.Sharing.CreateProjectFolder(ctx, "Q3 plans – draft"); err != nil {
		t.Errorf("a second folder of the same name: %v", err)
	}
	// Associates create folders; Jailed Users, by default, do not.
	assoc, jill := w.user("Asa", tenant.RoleUser), w.user("Jill", tenant.RoleUser)
	w.setGroup(assoc, w.builtin(sharing.GroupAssociate))
	w.setGroup(jill, w.builtin(sharing.GroupJailed))
	if _, err := w.svc.Sharing.CreateProjectFolder(w.as(assoc), "Asa's"); err != nil {
		t.Errorf("an Associate creating a folder: %v", err)
	}
	_, err = w.svc.Sharing.CreateProjectFolder(w.as(jill), "Jill's")
	wantCode(t, "a jailed user creating a folder", err, tenant.EForbidden, "")
}

func TestSharingRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	owner := w.as(w.owner)
	f := w.folder(w.owner, "Plans")
	reader, sharer, other, adam := w.user("Reader", tenant.RoleUser), w.user("Sharer", tenant.RoleUser),
		w.user("Other", tenant.RoleUser), w.user("Adam", tenant.RoleAdmin)
	w.share(w.owner, f, reader, policy.PresetRead)
	w.share(w.owner, f, sharer, policy.PresetShare)
	share := func(by *tenant.User, u *tenant.User, preset policy.Preset) error {
		_, err := w.svc.Sharing.ShareProjectFolder(w.as(by), sharing.ShareInput{FolderID: f.ID, UserID: u.ID, Preset: preset})
		return err
	}

	wantCode(t, "READ sharing", share(reader, other, policy.PresetList), tenant.EForbidden, "")
	if err := share(sharer, other, policy.PresetWrite); err != nil {
		t.Errorf("SHARE sharing as WRITE: %v", err)
	}
	wantCode(t, "SHARE making an owner", share(sharer, other, policy.PresetOwner), tenant.EForbidden, "")
	wantCode(t, "SHARE changing the owner's share", share(sharer, w.owner, policy.PresetRead), tenant.EForbidden, "")
	if _, err := w.svc.Sharing.UnshareProjectFolder(w.as(sharer), sharing.UnshareInput{FolderID: f.ID, UserID: other.ID}); err != nil {
		t.Errorf("SHARE unsharing: %v", err)
	}
	_, err := w.svc.Sharing.UnshareProjectFolder(w.as(sharer), sharing.UnshareInput{FolderID: f.ID, UserID: other.ID})
	wantCode(t, "unsharing what is not shared", err, tenant.EConflict, "userId")

	// A folder keeps an owner.
	wantCode(t, "the last owner stepping down", share(w.owner, w.owner, policy.PresetWrite), tenant.EConflict, "preset")
	_, err = w.svc.Sharing.UnshareProjectFolder(owner, sharing.UnshareInput{FolderID: f.ID, UserID: w.owner.ID})
	wantCode(t, "the last owner leaving", err, tenant.EConflict, "preset")
	if err := share(w.owner, sharer, policy.PresetOwner); err != nil {
		t.Fatal(err)
	}
	if err := share(sharer, w.owner, policy.PresetRead); err != nil {
		t.Errorf("an owner changing another owner's share: %v", err)
	}

	// Bad input.
	for name, in := range map[string]sharing.ShareInput{
		"both":    {FolderID: f.ID, UserID: other.ID, GroupID: w.builtin(sharing.GroupPro).ID, Preset: policy.PresetRead},
		"neither": {FolderID: f.ID, Preset: policy.PresetRead},
		"preset":  {FolderID: f.ID, UserID: other.ID, Preset: "ADMIN"},
	} {
		_, err := w.svc.Sharing.ShareProjectFolder(owner, in)
		wantCode(t, name, err, tenant.EInvalid, "")
	}
	if _, err := w.svc.People.DeleteUser(owner, other.ID, false); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "sharing with a deleted user", share(sharer, other, policy.PresetRead), tenant.EConflict, "userId")

	// Who sees the members.
	members, err := w.svc.Sharing.FolderMembers(w.as(sharer), f.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		got = append(got, m.User.Name+" "+string(m.Preset))
	}
	if want := []string{"Olive Owner READ", "Reader READ", "Sharer OWNER"}; !slices.Equal(got, want) {
		t.Errorf("members = %q, want %q", got, want)
	}
	_, err = w.svc.Sharing.FolderMembers(w.as(reader), f.ID)
	wantCode(t, "a READ user listing members", err, tenant.EForbidden, "")

	// Renaming and deleting need MANAGE; those without any right do not see the folder.
	_, err = w.svc.Sharing.RenameProjectFolder(w.as(reader), f.ID, "Mine")
	wantCode(t, "READ renaming", err, tenant.EForbidden, "")
	_, err = w.svc.Sharing.DeleteProjectFolder(w.as(reader), f.ID)
	wantCode(t, "READ deleting", err, tenant.EForbidden, "")
	stranger := w.user("Stranger", tenant.RoleUser)
	_, err = w.svc.Sharing.RenameProjectFolder(w.as(stranger), f.ID, "Mine")
	wantCode(t, "renaming an unshared folder", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.ProjectFolder(w.as(stranger), f.ID)
	wantCode(t, "reading an unshared folder", err, tenant.ENotFound, "")
	if r, err := w.svc.Sharing.RenameProjectFolder(w.as(sharer), f.ID, "Plans 2026"); err != nil || r.Name != "Plans 2026" {
		t.Errorf("an OWNER renaming = %+v, %v", r, err)
	}

	// Administrators manage every folder of the account, shared with them or not.
	if err := share(adam, stranger, policy.PresetOwner); err != nil {
		t.Errorf("an admin sharing: %v", err)
	}
	if _, err := w.svc.Sharing.DeleteProjectFolder(w.as(adam), f.ID); err != nil {
		t.Errorf("an admin deleting: %v", err)
	}
	_, err = w.svc.Sharing.ProjectFolder(owner, f.ID)
	wantCode(t, "a deleted folder", err, tenant.ENotFound, "")

	// Sharing also needs a group that allows it.
	g := w.folder(w.owner, "Budget")
	w.share(w.owner, g, reader, policy.PresetShare)
	w.setGroup(reader, w.builtin(sharing.GroupAssociate))
	_, err = w.svc.Sharing.ShareProjectFolder(w.as(reader), sharing.ShareInput{FolderID: g.ID, UserID: stranger.ID, Preset: policy.PresetRead})
	wantCode(t, "an Associate with SHARE sharing", err, tenant.EForbidden, "")
}

func TestListingProjectFolders(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann, adam := w.user("Ann", tenant.RoleUser), w.user("Adam", tenant.RoleAdmin)
	plans, budget := w.folder(w.owner, "Plans"), w.folder(w.owner, "Budget")
	w.folder(w.owner, "Archive")
	w.share(w.owner, plans, ann, policy.PresetRead)
	if _, err := w.svc.Sharing.ShareProjectFolder(w.as(w.owner), sharing.ShareInput{FolderID: budget.ID, GroupID: w.builtin(sharing.GroupPro).ID, Preset: policy.PresetWrite}); err != nil {
		t.Fatal(err)
	}
	list := func(u *tenant.User, search string, page tenant.Page) *tenant.Connection[*sharing.ProjectFolder] {
		t.Helper()
		c, err := w.svc.Sharing.ProjectFolders(w.as(u), w.account.ID, search, tenant.Order{}, page)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := folderNames(list(adam, "", tenant.Page{})); !slices.Equal(got, []string{"Archive", "Budget", "Plans"}) {
		t.Errorf("an admin's folders = %q", got)
	}
	if got := folderNames(list(ann, "", tenant.Page{})); !slices.Equal(got, []string{"Budget", "Plans"}) {
		t.Errorf("Ann's folders = %q", got)
	}
	if got := folderNames(list(ann, "pla", tenant.Page{})); !slices.Equal(got, []string{"Plans"}) {
		t.Errorf("Ann's folders matching pla = %q", got)
	}
	first := list(adam, "", tenant.Page{First: 2})
	rest := list(adam, "", tenant.Page{First: 2, After: first.Cursors[1]})
	if !first.HasNext || !slices.Equal(folderNames(rest), []string{"Plans"}) || rest.HasNext {
		t.Errorf("pages: %q then %q", folderNames(first), folderNames(rest))
	}

	// What is shared with Ann, with the union of her shares.
	shared, err := w.svc.Sharing.ProjectsSharedWith(w.as(ann), ann.ID, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range shared.Items {
		got = append(got, p.Folder.Name+" "+string(p.Preset))
	}
	if want := []string{"Budget WRITE", "Plans READ"}; !slices.Equal(got, want) {
		t.Errorf("shared with Ann = %q, want %q", got, want)
	}
	if _, err := w.svc.Sharing.ProjectsSharedWith(w.as(adam), ann.ID, tenant.Order{}, tenant.Page{}); err != nil {
		t.Errorf("an admin looking at Ann's projects: %v", err)
	}
	bob := w.user("Bob", tenant.RoleUser)
	_, err = w.svc.Sharing.ProjectsSharedWith(w.as(bob), ann.ID, tenant.Order{}, tenant.Page{})
	wantCode(t, "a user looking at another's projects", err, tenant.ENotFound, "")
	if r, err := w.svc.Sharing.MyRightsIn(w.as(ann), plans.ID); err != nil || !slices.Equal(r, policy.PresetRead.Rights()) {
		t.Errorf("Ann's rights in Plans = %v, %v", r, err)
	}
}

func TestAnotherAccountsFoldersAreNotFound(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann := w.user("Ann", tenant.RoleUser)
	f := w.folder(w.owner, "Plans")
	pro := w.builtin(sharing.GroupPro)
	_, gus, err := w.svc.Accounts.CreateAccount(tenant.SystemContext(context.Background()), account.CreateAccountInput{
		Name: "Globex", OwnerEmail: "owner@globex.example", OwnerName: "Gus",
	})
	if err != nil {
		t.Fatal(err)
	}
	as := w.as(gus)
	theirs := w.folder(gus, "Theirs")
	_, err = w.svc.Sharing.ProjectFolder(as, f.ID)
	wantCode(t, "projectFolder", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.RenameProjectFolder(as, f.ID, "Hijacked")
	wantCode(t, "rename", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.DeleteProjectFolder(as, f.ID)
	wantCode(t, "delete", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.ShareProjectFolder(as, sharing.ShareInput{FolderID: f.ID, UserID: gus.ID, Preset: policy.PresetOwner})
	wantCode(t, "share our folder", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.UnshareProjectFolder(as, sharing.UnshareInput{FolderID: f.ID, UserID: w.owner.ID})
	wantCode(t, "unshare our folder", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.ShareProjectFolder(as, sharing.ShareInput{FolderID: theirs.ID, UserID: ann.ID, Preset: policy.PresetRead})
	wantCode(t, "share with our user", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.ShareProjectFolder(as, sharing.ShareInput{FolderID: theirs.ID, GroupID: pro.ID, Preset: policy.PresetRead})
	wantCode(t, "share with our group", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.ProjectFolders(as, w.account.ID, "", tenant.Order{}, tenant.Page{})
	wantCode(t, "our folders", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.ProjectsSharedWith(as, ann.ID, tenant.Order{}, tenant.Page{})
	wantCode(t, "our user's projects", err, tenant.ENotFound, "")
	if got, err := w.svc.Sharing.ProjectFolder(w.as(w.owner), f.ID); err != nil || got.Name != "Plans" {
		t.Errorf("our folder = %+v, %v", got, err)
	}
}

// Row-level security keeps groups, folders and shares to their account even
// for a query that forgets to filter.
func TestGroupAndFolderRowsStayInTheirAccount(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f := w.folder(w.owner, "Plans")
	w.share(w.owner, f, w.user("Ann", tenant.RoleUser), policy.PresetRead)
	other, _, err := w.svc.Accounts.CreateAccount(tenant.SystemContext(context.Background()), account.CreateAccountInput{
		Name: "Globex", OwnerEmail: "owner@globex.example", OwnerName: "Gus",
	})
	if err != nil {
		t.Fatal(err)
	}
	err = w.svc.DB.InAccount(context.Background(), other.ID, func(tx *sqlx.Tx) error {
		for table, want := range map[string]int{"groups": 3, "project_folders": 0, "folder_shares": 0} {
			var n int
			if err := tx.Get(&n, `SELECT count(*) FROM `+table); err != nil {
				return err
			}
			if n != want {
				t.Errorf("Globex's transaction sees %d rows of %s, want %d", n, table, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = w.svc.DB.InAccount(context.Background(), other.ID, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO folder_shares (account_id, folder_id, user_id, preset) VALUES ($1, $2, $3, 'OWNER')`,
			w.account.ID, f.ID, w.owner.ID)
		return err
	})
	if err == nil {
		t.Error("Globex's transaction wrote a share into Acme")
	}
}
