package graph_test

import (
	"slices"
	"testing"
)

type groupNode struct {
	ID          string
	Name        string
	Builtin     *string
	Default     bool
	Jailed      bool
	Permissions []string
	MemberCount int
}

const groupFields = `id name builtin default jailed permissions memberCount`

// groups lists the account's groups as token sees them, by name.
func (e *env) groups(token string) map[string]groupNode {
	e.t.Helper()
	var out struct {
		Account struct {
			Groups struct{ Edges []struct{ Node groupNode } }
		}
	}
	e.mustDo(token, `{ account { groups { edges { node { `+groupFields+` } } } } }`, nil, &out)
	m := map[string]groupNode{}
	for _, edge := range out.Account.Groups.Edges {
		m[edge.Node.Name] = edge.Node
	}
	return m
}

// groupPayload is what group mutations return.
type groupPayload struct {
	Group      *groupNode
	UserErrors []userError
}

func (e *env) setUserGroup(token, userID, groupID string) {
	e.t.Helper()
	var out struct {
		SetUserGroup struct{ UserErrors []userError }
	}
	e.mustDo(token, `mutation($u: ID!, $g: ID!) { setUserGroup(input: {userId: $u, groupId: $g}) { user { id } userErrors { field code message } } }`,
		vars{"u": userID, "g": groupID}, &out)
	if len(out.SetUserGroup.UserErrors) > 0 {
		e.t.Fatalf("setUserGroup: %+v", out.SetUserGroup.UserErrors)
	}
}

func wantUserError(t *testing.T, what string, errs []userError, code, field string) {
	t.Helper()
	if len(errs) != 1 || errs[0].Code != code || (field != "" && (errs[0].Field == nil || *errs[0].Field != field)) {
		t.Errorf("%s: userErrors = %+v; want one %s on %q", what, errs, code, field)
	}
}

const (
	createGroup = `mutation($n: String!, $p: [GroupPermission!]!) { createGroup(input: {name: $n, permissions: $p}) { group { ` + groupFields + ` } userErrors { field code message } } }`
	updateGroup = `mutation($id: ID!, $n: String, $p: [GroupPermission!]) { updateGroup(input: {id: $id, name: $n, permissions: $p}) { group { ` + groupFields + ` } userErrors { field code message } } }`
	deleteGroup = `mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedGroupId userErrors { field code message } } }`
)

func TestGroupsThroughGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	umaID, uma := e.user(owner, "uma@acme.example", "USER")

	groups := e.groups(owner)
	pro, jailed := groups["Pro"], groups["Jailed Users"]
	if len(groups) != 3 || !pro.Default || pro.Jailed || *pro.Builtin != "PRO" || pro.MemberCount != 3 ||
		!slices.Equal(pro.Permissions, []string{"SFTP_MY_FILES", "CREATE_PROJECT_FOLDERS", "SHARE_PROJECT_FOLDERS"}) ||
		!jailed.Jailed || len(jailed.Permissions) != 0 || *groups["Associate"].Builtin != "ASSOCIATE" {
		t.Fatalf("groups = %+v", groups)
	}
	// A plain user sees their own group only.
	if got := e.groups(uma); len(got) != 1 || got["Pro"].ID != pro.ID {
		t.Errorf("a user's groups = %+v", got)
	}

	// Role boundaries: a plain user may not change groups.
	e.mustFail(uma, createGroup, vars{"n": "Mine", "p": []string{}}, "FORBIDDEN")
	e.mustFail(uma, updateGroup, vars{"id": pro.ID, "p": []string{}}, "FORBIDDEN")
	e.mustFail(uma, deleteGroup, vars{"id": pro.ID}, "FORBIDDEN")
	e.mustFail(uma, `mutation($u: ID!, $g: ID!) { setUserGroup(input: {userId: $u, groupId: $g}) { user { id } } }`,
		vars{"u": umaID, "g": jailed.ID}, "FORBIDDEN")
	e.mustFail(uma, `query($id: ID!) { node(id: $id) { ... on Group { members { edges { node { id } } } } } }`, vars{"id": pro.ID}, "FORBIDDEN")
	e.mustFail("", createGroup, vars{"n": "Mine", "p": []string{}}, "UNAUTHENTICATED")

	// An administrator may.
	var created struct{ CreateGroup groupPayload }
	e.mustDo(admin, createGroup, vars{"n": "Contractors", "p": []string{"MANAGE_CONTACTS", "SFTP_MY_FILES"}}, &created)
	g := created.CreateGroup.Group
	if g == nil || g.Builtin != nil || g.Default || g.Jailed || !slices.Equal(g.Permissions, []string{"SFTP_MY_FILES", "MANAGE_CONTACTS"}) {
		t.Fatalf("createGroup = %+v", created.CreateGroup)
	}
	e.mustDo(admin, createGroup, vars{"n": "contractors", "p": []string{}}, &created)
	wantUserError(t, "a taken name", created.CreateGroup.UserErrors, "CONFLICT", "name")
	r := e.do(admin, createGroup, vars{"n": "Flyers", "p": []string{"FLY"}})
	if len(r.Errors) == 0 {
		t.Error("a permission outside the enum was accepted")
	}

	var updated struct{ UpdateGroup groupPayload }
	e.mustDo(admin, updateGroup, vars{"id": jailed.ID, "p": []string{"SFTP_MY_FILES"}}, &updated)
	wantUserError(t, "giving Jailed Users My Files", updated.UpdateGroup.UserErrors, "INVALID", "permissions")
	e.mustDo(admin, updateGroup, vars{"id": pro.ID, "n": "Professionals"}, &updated)
	wantUserError(t, "renaming Pro", updated.UpdateGroup.UserErrors, "INVALID", "name")
	e.mustDo(admin, updateGroup, vars{"id": g.ID, "n": "Freelancers", "p": []string{}}, &updated)
	if u := updated.UpdateGroup.Group; u == nil || u.Name != "Freelancers" || !u.Jailed {
		t.Errorf("updateGroup = %+v", updated.UpdateGroup)
	}

	// Moving a user, and what they see of it.
	e.setUserGroup(admin, umaID, g.ID)
	var me struct {
		Viewer struct{ User struct{ Group groupNode } }
	}
	e.mustDo(uma, `{ viewer { ... on UserViewer { user { group { `+groupFields+` } } } } }`, nil, &me)
	if me.Viewer.User.Group.ID != g.ID || !me.Viewer.User.Group.Jailed {
		t.Errorf("Uma's group = %+v", me.Viewer.User.Group)
	}
	var members struct {
		Node struct {
			Members struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	e.mustDo(admin, `query($id: ID!) { node(id: $id) { ... on Group { members { edges { node { id } } } } } }`, vars{"id": g.ID}, &members)
	if len(members.Node.Members.Edges) != 1 || members.Node.Members.Edges[0].Node.ID != umaID {
		t.Errorf("members = %+v", members)
	}

	// Deleting: not a built-in group, not while users are in it.
	var deleted struct {
		DeleteGroup struct {
			DeletedGroupID *string
			UserErrors     []userError
		}
	}
	e.mustDo(admin, deleteGroup, vars{"id": pro.ID}, &deleted)
	wantUserError(t, "deleting Pro", deleted.DeleteGroup.UserErrors, "CONFLICT", "id")
	e.mustDo(admin, deleteGroup, vars{"id": g.ID}, &deleted)
	wantUserError(t, "deleting a group with a member", deleted.DeleteGroup.UserErrors, "CONFLICT", "id")
	e.setUserGroup(admin, umaID, pro.ID)
	e.mustDo(admin, deleteGroup, vars{"id": g.ID}, &deleted)
	if deleted.DeleteGroup.DeletedGroupID == nil || *deleted.DeleteGroup.DeletedGroupID != g.ID {
		t.Errorf("deleteGroup = %+v", deleted.DeleteGroup)
	}
	var node struct{ Node *struct{ ID string } }
	e.mustDo(admin, `query($id: ID!) { node(id: $id) { id } }`, vars{"id": g.ID}, &node)
	if node.Node != nil {
		t.Error("a deleted group is still a node")
	}
}

func TestGroupsOfAnotherAccountAreNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	umaID, uma := e.user(owner, "uma@acme.example", "USER")
	_, gus := e.account("Globex", "owner@globex.example")
	ours, theirs := e.groups(owner), e.groups(gus)

	e.mustFail(gus, updateGroup, vars{"id": ours["Pro"].ID, "n": "Hijacked"}, "NOT_FOUND")
	e.mustFail(gus, deleteGroup, vars{"id": ours["Pro"].ID}, "NOT_FOUND")
	set := `mutation($u: ID!, $g: ID!) { setUserGroup(input: {userId: $u, groupId: $g}) { user { id } } }`
	e.mustFail(gus, set, vars{"u": umaID, "g": theirs["Jailed Users"].ID}, "NOT_FOUND")
	var gusID struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(gus, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &gusID)
	e.mustFail(gus, set, vars{"u": gusID.Viewer.User.ID, "g": ours["Jailed Users"].ID}, "NOT_FOUND")
	// IDs of another type, or made up, are not found either.
	e.mustFail(owner, updateGroup, vars{"id": umaID, "n": "X"}, "NOT_FOUND")
	e.mustFail(owner, deleteGroup, vars{"id": "bm90LWFuLWlk"}, "NOT_FOUND")
	var node struct{ Node *struct{ ID string } }
	e.mustDo(gus, `query($id: ID!) { node(id: $id) { id } }`, vars{"id": ours["Pro"].ID}, &node)
	if node.Node != nil {
		t.Error("another account's group is a node")
	}
	// A plain user sees her own group.
	var other struct {
		Node *struct{ Group *struct{ ID string } }
	}
	e.mustDo(uma, `query($id: ID!) { node(id: $id) { ... on User { group { id } } } }`, vars{"id": umaID}, &other)
	if other.Node == nil || other.Node.Group == nil {
		t.Errorf("Uma cannot see her own group: %+v", other)
	}
}

// TestUserGroupAtCreationThroughGraphQL: createUser, updateUser and
// convertContactToUser take the user's group, in the same step as the rest.
func TestUserGroupAtCreationThroughGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	umaID, uma := e.user(owner, "uma@acme.example", "USER")
	_, other := e.account("Beta", "owner@beta.example")
	staff := e.staff("support@skiff.example")
	e.mustDo(staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 10}) { userErrors { message } } }`,
		vars{"a": globalID("Account", accountID)}, nil)
	jailed, pro := e.groups(owner)["Jailed Users"].ID, e.groups(owner)["Pro"].ID
	betaGroup := e.groups(other)["Pro"].ID

	type payload struct {
		User *struct {
			ID    string
			Group struct{ Name string }
			Sftp  struct{ Enabled bool }
		}
		UserErrors []userError
	}
	const fields = `user { id group { name } sftp { enabled } } userErrors { field code message }`
	create := func(token, email string, group any) payload {
		t.Helper()
		var out struct{ CreateUser payload }
		e.mustDo(token, `mutation($e: String!, $g: ID) { createUser(input: {email: $e, name: "Someone", password: "correct horse battery",
			sftpEnabled: true, groupId: $g}) { `+fields+` } }`, vars{"e": email, "g": group}, &out)
		return out.CreateUser
	}

	// Created jailed with SFTP on: the group is theirs from the start.
	if p := create(owner, "jo@acme.example", jailed); p.User == nil || p.User.Group.Name != "Jailed Users" || !p.User.Sftp.Enabled {
		t.Fatalf("create jailed: %+v", p)
	}
	if p := create(owner, "pat@acme.example", nil); p.User == nil || p.User.Group.Name != "Pro" {
		t.Errorf("create without a group: %+v", p)
	}
	// Another account's group, or an ID of another type, is a user error and nothing is created.
	for _, g := range []string{betaGroup, globalID("User", "6b1d2f0e-0000-4000-8000-000000000000"), "junk"} {
		wantUserError(t, "create in "+g, create(owner, "nope@acme.example", g).UserErrors, "INVALID", "groupId")
	}
	if p := create(owner, "nope@acme.example", nil); p.User == nil {
		t.Errorf("the failed creations left a user behind: %+v", p)
	}
	// A plain user cannot create users, nor move themselves.
	e.mustFail(uma, `mutation($e: String!, $g: ID) { createUser(input: {email: $e, name: "X", groupId: $g}) { user { id } } }`,
		vars{"e": "x@acme.example", "g": jailed}, "FORBIDDEN")
	e.mustFail(uma, `mutation($id: ID!, $g: ID) { updateUser(input: {id: $id, groupId: $g}) { user { id } } }`,
		vars{"id": umaID, "g": pro}, "FORBIDDEN")

	// updateUser moves a user and turns SFTP on in one step.
	var upd struct{ UpdateUser payload }
	e.mustDo(owner, `mutation($id: ID!, $g: ID) { updateUser(input: {id: $id, groupId: $g, sftpEnabled: true}) { `+fields+` } }`,
		vars{"id": umaID, "g": jailed}, &upd)
	if p := upd.UpdateUser; p.User == nil || p.User.Group.Name != "Jailed Users" || !p.User.Sftp.Enabled {
		t.Errorf("update: %+v", p)
	}
	e.mustDo(owner, `mutation($id: ID!, $g: ID) { updateUser(input: {id: $id, groupId: $g}) { `+fields+` } }`,
		vars{"id": umaID, "g": betaGroup}, &upd)
	wantUserError(t, "update to another account's group", upd.UpdateUser.UserErrors, "INVALID", "groupId")

	// convertContactToUser too.
	var c struct {
		CreateContact struct{ Contact struct{ ID string } }
	}
	e.mustDo(owner, `mutation { createContact(input: {email: "cat@acme.example", name: "Cat"}) { contact { id } } }`, nil, &c)
	var conv struct{ ConvertContactToUser payload }
	e.mustDo(owner, `mutation($c: ID!, $g: ID) { convertContactToUser(input: {contactId: $c, sftpEnabled: true, groupId: $g}) { `+fields+` } }`,
		vars{"c": c.CreateContact.Contact.ID, "g": jailed}, &conv)
	if p := conv.ConvertContactToUser; p.User == nil || p.User.Group.Name != "Jailed Users" || !p.User.Sftp.Enabled {
		t.Errorf("convert: %+v", p)
	}
}
