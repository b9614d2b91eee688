package domain_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// wantCode fails unless err has code (and, for user errors, names field).
func wantCode(t *testing.T, what string, err error, code tenant.Code, field string) {
	t.Helper()
	if got := tenant.ErrorCode(err); got != code {
		t.Errorf("%s: %v; want %s", what, err, code)
		return
	}
	if field != "" && tenant.ErrorField(err) != field {
		t.Errorf("%s: field %q; want %q", what, tenant.ErrorField(err), field)
	}
}

func groupNames(gs []*sharing.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func TestEveryAccountHasTheBuiltinGroups(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, err := w.svc.Sharing.Groups(w.as(w.owner), w.account.ID, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := groupNames(c.Items), []string{"Pro", "Associate", "Jailed Users"}; !slices.Equal(got, want) {
		t.Fatalf("groups = %q, want %q", got, want)
	}
	want := map[sharing.BuiltinGroup][]policy.Permission{
		// Contacts stay with owners and admins until a group is given them.
		sharing.GroupPro:       {policy.SFTPMyFiles, policy.CreateProjectFolders, policy.ShareProjectFolders},
		sharing.GroupAssociate: {policy.SFTPMyFiles, policy.CreateProjectFolders},
		sharing.GroupJailed:    {},
	}
	for _, g := range c.Items {
		if !slices.Equal(g.Permissions, want[g.Builtin]) && len(g.Permissions)+len(want[g.Builtin]) > 0 {
			t.Errorf("%s has %v, want %v", g.Name, g.Permissions, want[g.Builtin])
		}
		if g.Jailed() != (g.Builtin == sharing.GroupJailed) || g.Default() != (g.Builtin == sharing.GroupPro) {
			t.Errorf("%s: jailed %v, default %v", g.Name, g.Jailed(), g.Default())
		}
	}
	// Pages keep the order.
	first, err := w.svc.Sharing.Groups(w.as(w.owner), w.account.ID, tenant.Order{}, tenant.Page{First: 2})
	if err != nil || !first.HasNext || !slices.Equal(groupNames(first.Items), []string{"Pro", "Associate"}) {
		t.Fatalf("first page = %q, %v", groupNames(first.Items), err)
	}
	rest, err := w.svc.Sharing.Groups(w.as(w.owner), w.account.ID, tenant.Order{}, tenant.Page{First: 2, After: first.Cursors[1]})
	if err != nil || rest.HasNext || !slices.Equal(groupNames(rest.Items), []string{"Jailed Users"}) {
		t.Errorf("second page = %q, %v", groupNames(rest.Items), err)
	}
	// The owner, and every new user, start in Pro.
	uma := w.user("Uma", tenant.RoleUser)
	for _, u := range []*tenant.User{w.owner, uma} {
		if g, err := w.svc.Sharing.GroupOfUser(w.as(w.owner), u.ID); err != nil || g.Builtin != sharing.GroupPro {
			t.Errorf("%s's group = %+v, %v; want Pro", u.Name, g, err)
		}
	}
	if pro := w.builtin(sharing.GroupPro); pro.MemberCount != 2 {
		t.Errorf("Pro has %d members, want 2", pro.MemberCount)
	}
	// A plain user sees their own group only, and nobody else's.
	c, err = w.svc.Sharing.Groups(w.as(uma), w.account.ID, tenant.Order{}, tenant.Page{})
	if err != nil || !slices.Equal(groupNames(c.Items), []string{"Pro"}) {
		t.Errorf("a user's groups = %q, %v", groupNames(c.Items), err)
	}
	_, err = w.svc.Sharing.GroupOfUser(w.as(uma), w.owner.ID)
	wantCode(t, "a user asking for another's group", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.Group(w.as(uma), w.builtin(sharing.GroupJailed).ID)
	wantCode(t, "a user asking for another group", err, tenant.ENotFound, "")

	// The batch behind User.group follows the same rule.
	ids := []string{w.owner.ID, uma.ID, "not-a-user"}
	if m, err := w.svc.Sharing.GroupsOfUsers(w.as(w.owner), w.account.ID, ids); err != nil || len(m) != 2 || m[uma.ID].Builtin != sharing.GroupPro {
		t.Errorf("the owner's batch = %v, %v", m, err)
	}
	if m, err := w.svc.Sharing.GroupsOfUsers(w.as(uma), w.account.ID, ids); err != nil || len(m) != 1 || m[uma.ID] == nil {
		t.Errorf("a user's batch = %v, %v", m, err)
	}
}

func TestOnlyOwnersAndAdminsManageGroups(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	uma, adam := w.user("Uma", tenant.RoleUser), w.user("Adam", tenant.RoleAdmin)
	pro, jailed := w.builtin(sharing.GroupPro), w.builtin(sharing.GroupJailed)
	name := "Renamed"
	as := w.as(uma)
	_, err := w.svc.Sharing.CreateGroup(as, sharing.CreateGroupInput{Name: "Mine"})
	wantCode(t, "createGroup", err, tenant.EForbidden, "")
	_, err = w.svc.Sharing.UpdateGroup(as, sharing.UpdateGroupInput{ID: pro.ID, Name: &name})
	wantCode(t, "updateGroup", err, tenant.EForbidden, "")
	_, err = w.svc.Sharing.DeleteGroup(as, pro.ID)
	wantCode(t, "deleteGroup", err, tenant.EForbidden, "")
	_, err = w.svc.Sharing.SetUserGroup(as, uma.ID, jailed.ID)
	wantCode(t, "setUserGroup on oneself", err, tenant.EForbidden, "")
	_, err = w.svc.Sharing.GroupMembers(as, pro.ID, tenant.Order{}, tenant.Page{})
	wantCode(t, "group members", err, tenant.EForbidden, "")
	if g, _ := w.svc.Sharing.GroupOfUser(w.as(w.owner), uma.ID); g.Builtin != sharing.GroupPro {
		t.Errorf("a refused setUserGroup moved the user to %s", g.Name)
	}

	// An administrator may, even one whose own group may do nothing.
	w.setGroup(adam, jailed)
	g, err := w.svc.Sharing.CreateGroup(w.as(adam), sharing.CreateGroupInput{Name: "Contractors", Permissions: []policy.Permission{policy.CreateProjectFolders}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Sharing.SetUserGroup(w.as(adam), uma.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	members, err := w.svc.Sharing.GroupMembers(w.as(adam), g.ID, tenant.Order{}, tenant.Page{})
	if err != nil || len(members.Items) != 1 || members.Items[0].ID != uma.ID {
		t.Errorf("members = %v, %v", members, err)
	}
	// Staff are not account users.
	staff := tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindStaff, ID: w.owner.ID})
	_, err = w.svc.Sharing.CreateGroup(staff, sharing.CreateGroupInput{Name: "Support"})
	wantCode(t, "staff createGroup", err, tenant.EForbidden, "")
	_, err = w.svc.Sharing.CreateGroup(context.Background(), sharing.CreateGroupInput{Name: "Anonymous"})
	wantCode(t, "anonymous createGroup", err, tenant.EUnauthenticated, "")
}

func TestCustomGroupLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := w.as(w.owner)
	g, err := w.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: " Contractors ",
		Permissions: []policy.Permission{policy.ManageContacts, policy.CreateProjectFolders, policy.ManageContacts}})
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "Contractors" || g.Builtin != "" || !slices.Equal(g.Permissions, []policy.Permission{policy.CreateProjectFolders, policy.ManageContacts}) || !g.Jailed() {
		t.Errorf("created %+v", g)
	}
	for _, name := range []string{"contractors", "PRO", "jailed users"} {
		_, err = w.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: name})
		wantCode(t, "a taken name "+name, err, tenant.EConflict, "name")
	}
	_, err = w.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: "Flyers", Permissions: []policy.Permission{"FLY"}})
	wantCode(t, "an unknown permission", err, tenant.EInvalid, "permissions")
	_, err = w.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: "  "})
	wantCode(t, "no name", err, tenant.EInvalid, "name")
	_, err = w.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: strings.Repeat("g", 101)})
	wantCode(t, "a long name", err, tenant.EInvalid, "name")

	name, perms := "Freelancers", []policy.Permission{policy.SFTPMyFiles}
	if g, err = w.svc.Sharing.UpdateGroup(ctx, sharing.UpdateGroupInput{ID: g.ID, Name: &name, Permissions: &perms}); err != nil {
		t.Fatal(err)
	}
	if g.Name != "Freelancers" || !slices.Equal(g.Permissions, perms) || g.Jailed() {
		t.Errorf("updated %+v", g)
	}

	// Built-in groups: permissions change, names and existence do not, and
	// Jailed Users keeps its jail.
	pro, jailed := w.builtin(sharing.GroupPro), w.builtin(sharing.GroupJailed)
	newName := "Professionals"
	_, err = w.svc.Sharing.UpdateGroup(ctx, sharing.UpdateGroupInput{ID: pro.ID, Name: &newName})
	wantCode(t, "renaming Pro", err, tenant.EInvalid, "name")
	sameName := "Pro"
	fewer := []policy.Permission{policy.SFTPMyFiles, policy.CreateProjectFolders, policy.ShareProjectFolders}
	if pro, err = w.svc.Sharing.UpdateGroup(ctx, sharing.UpdateGroupInput{ID: pro.ID, Name: &sameName, Permissions: &fewer}); err != nil || !slices.Equal(pro.Permissions, fewer) {
		t.Errorf("Pro's permissions = %v, %v", pro, err)
	}
	myFiles := []policy.Permission{policy.SFTPMyFiles, policy.CreateProjectFolders}
	_, err = w.svc.Sharing.UpdateGroup(ctx, sharing.UpdateGroupInput{ID: jailed.ID, Permissions: &myFiles})
	wantCode(t, "giving Jailed Users My Files", err, tenant.EInvalid, "permissions")
	create := []policy.Permission{policy.CreateProjectFolders}
	if jailed, err = w.svc.Sharing.UpdateGroup(ctx, sharing.UpdateGroupInput{ID: jailed.ID, Permissions: &create}); err != nil || !jailed.Jailed() {
		t.Errorf("Jailed Users with CREATE_PROJECT_FOLDERS = %+v, %v", jailed, err)
	}
	for _, b := range []*sharing.Group{pro, jailed, w.builtin(sharing.GroupAssociate)} {
		_, err = w.svc.Sharing.DeleteGroup(ctx, b.ID)
		wantCode(t, "deleting "+b.Name, err, tenant.EConflict, "id")
	}

	// Deleting: refused while live users are in it; deleted users move to Jailed Users.
	ann, bob := w.user("Ann", tenant.RoleUser), w.user("Bob", tenant.RoleUser)
	w.setGroup(ann, g)
	w.setGroup(bob, g)
	f := w.folder(w.owner, "Plans")
	if _, err := w.svc.Sharing.ShareProjectFolder(ctx, sharing.ShareInput{FolderID: f.ID, GroupID: g.ID, Preset: policy.PresetRead}); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.Sharing.DeleteGroup(ctx, g.ID)
	wantCode(t, "deleting a group with members", err, tenant.EConflict, "id")
	if !strings.Contains(tenant.ErrorMessage(err), "2 users are in this group") {
		t.Errorf("message = %q", tenant.ErrorMessage(err))
	}
	if _, err := w.svc.People.DeleteUser(ctx, bob.ID, false); err != nil {
		t.Fatal(err)
	}
	w.setGroup(ann, pro)
	if _, err := w.svc.Sharing.DeleteGroup(ctx, g.ID); err != nil {
		t.Fatalf("deleting an empty group: %v", err)
	}
	_, err = w.svc.Sharing.Group(ctx, g.ID)
	wantCode(t, "a deleted group", err, tenant.ENotFound, "")
	if _, err := w.svc.People.RestoreUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.svc.Sharing.GroupOfUser(ctx, bob.ID); got.Builtin != sharing.GroupJailed {
		t.Errorf("a restored member of a deleted group is in %s, want Jailed Users", got.Name)
	}
	members, err := w.svc.Sharing.FolderMembers(ctx, f.ID)
	if err != nil || len(members) != 1 || members[0].User == nil || members[0].User.ID != w.owner.ID {
		t.Errorf("the folder's members after deleting the group it was shared with: %+v, %v", members, err)
	}

	_, err = w.svc.Sharing.SetUserGroup(ctx, bob.ID, "not-a-group")
	wantCode(t, "setUserGroup to a bad ID", err, tenant.ENotFound, "")
	if _, err := w.svc.People.DeleteUser(ctx, bob.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.Sharing.SetUserGroup(ctx, bob.ID, pro.ID)
	wantCode(t, "setUserGroup of a deleted user", err, tenant.EConflict, "userId")

	events, err := w.svc.Audit.Events(ctx, w.account.ID, audit.Filter{Kinds: []string{"group.*", "user.group_changed"}}, tenant.Order{}, tenant.Page{First: 100})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range events.Items {
		kinds[e.Kind]++
	}
	if kinds["group.created"] != 1 || kinds["group.updated"] != 3 || kinds["group.deleted"] != 1 || kinds["user.group_changed"] != 4 {
		t.Errorf("audit trail = %v", kinds)
	}
}

// A custom group with each permission, and one with all the others: the
// permission alone decides.
func TestCustomGroupPermissions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := w.as(w.owner)
	f := w.folder(w.owner, "Plans")
	target := w.user("Target", tenant.RoleUser)
	for _, perm := range policy.Permissions() {
		var others []policy.Permission
		for _, p := range policy.Permissions() {
			if p != perm {
				others = append(others, p)
			}
		}
		with, err := w.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: "With " + string(perm), Permissions: []policy.Permission{perm}})
		if err != nil {
			t.Fatal(err)
		}
		without, err := w.svc.Sharing.CreateGroup(ctx, sharing.CreateGroupInput{Name: "Without " + string(perm), Permissions: others})
		if err != nil {
			t.Fatal(err)
		}
		u := w.user("Member "+string(perm), tenant.RoleUser)
		w.share(w.owner, f, u, policy.PresetShare)
		for _, g := range []*sharing.Group{with, without} {
			w.setGroup(u, g)
			has := g == with
			var err error
			switch perm {
			case policy.SFTPMyFiles:
				jailed, jerr := w.svc.Sharing.SFTPJailed(context.Background(), w.account.ID, u.ID)
				if jerr != nil || jailed == has || w.login(u).Jailed == has {
					t.Errorf("%s: jailed by the policy %v (%v), at login %v", g.Name, jailed, jerr, w.login(u).Jailed)
				}
				names, lerr := ls(w.connect(u), "/")
				if lerr != nil || slices.Contains(names, "My Files") != has {
					t.Errorf("%s: ls / = %q, %v", g.Name, names, lerr)
				}
				continue
			case policy.CreateProjectFolders:
				_, err = w.svc.Sharing.CreateProjectFolder(w.as(u), "Made by "+g.Name)
			case policy.ShareProjectFolders:
				_, err = w.svc.Sharing.ShareProjectFolder(w.as(u), sharing.ShareInput{FolderID: f.ID, UserID: target.ID, Preset: policy.PresetRead})
			case policy.ManageContacts:
				_, err = w.svc.Sharing.RequirePermission(w.as(u), policy.ManageContacts)
			}
			if has && err != nil {
				t.Errorf("%s: %v; want it allowed", g.Name, err)
			}
			if !has {
				wantCode(t, g.Name, err, tenant.EForbidden, "")
			}
		}
	}
}

func TestAnotherAccountsGroupsAreNotFound(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ours := w.builtin(sharing.GroupJailed)
	uma := w.user("Uma", tenant.RoleUser)
	_, otherOwner, err := w.svc.Accounts.CreateAccount(tenant.SystemContext(context.Background()), account.CreateAccountInput{
		Name: "Globex", OwnerEmail: "owner@globex.example", OwnerName: "Gus",
	})
	if err != nil {
		t.Fatal(err)
	}
	as := w.as(otherOwner)
	theirs, err := w.svc.Sharing.Groups(as, otherOwner.AccountID, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	theirPro := theirs.Items[0]
	name := "Hijacked"
	perms := []policy.Permission{}
	_, err = w.svc.Sharing.UpdateGroup(as, sharing.UpdateGroupInput{ID: ours.ID, Name: &name, Permissions: &perms})
	wantCode(t, "updateGroup", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.DeleteGroup(as, ours.ID)
	wantCode(t, "deleteGroup", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.Group(as, ours.ID)
	wantCode(t, "group", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.GroupMembers(as, ours.ID, tenant.Order{}, tenant.Page{})
	wantCode(t, "group members", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.SetUserGroup(as, otherOwner.ID, ours.ID)
	wantCode(t, "setUserGroup into our group", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.SetUserGroup(as, uma.ID, theirPro.ID)
	wantCode(t, "setUserGroup of our user", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.GroupOfUser(as, uma.ID)
	wantCode(t, "group of our user", err, tenant.ENotFound, "")
	_, err = w.svc.Sharing.Groups(as, w.account.ID, tenant.Order{}, tenant.Page{})
	wantCode(t, "our groups", err, tenant.ENotFound, "")
	if g, _ := w.svc.Sharing.GroupOfUser(w.as(w.owner), uma.ID); g.Builtin != sharing.GroupPro {
		t.Errorf("our user was moved to %s", g.Name)
	}
}
