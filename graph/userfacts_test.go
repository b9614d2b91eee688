package graph_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// userFacts reads the facts an admin UI shows about a user.
func (e *env) userFacts(token, id string) (invitationPending bool) {
	e.t.Helper()
	var out struct {
		Node struct{ InvitationPending bool }
	}
	e.mustDo(token, `query($id: ID!) { node(id: $id) { ... on User { invitationPending } } }`, vars{"id": id}, &out)
	return out.Node.InvitationPending
}

// A user created without a password is invited; the invitation is pending
// until they accept it. Users created with a password were never invited.
func TestUserInvitationPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	withPassword, _ := e.user(owner, "pat@acme.example", "USER")
	var created struct {
		CreateUser struct {
			User       *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation { createUser(input: {email: "inv@acme.example", name: "Invitee", role: USER}) { user { id } userErrors { field code message } } }`, nil, &created)
	if created.CreateUser.User == nil {
		t.Fatalf("createUser: %+v", created.CreateUser.UserErrors)
	}
	invited := created.CreateUser.User.ID
	if !e.userFacts(owner, invited) {
		t.Fatal("a user created without a password: invitationPending false")
	}
	if e.userFacts(owner, withPassword) {
		t.Fatal("a user created with a password: invitationPending true")
	}

	var data []string
	if err := e.svc.DB.X.Select(&data, `SELECT data::text FROM outbox WHERE account_id = $1 AND kind = 'invitation' AND recipient = 'inv@acme.example'`, accountID); err != nil || len(data) != 1 {
		t.Fatalf("invitation emails: %v, %v", data, err)
	}
	var mail struct{ Token string }
	if err := json.Unmarshal([]byte(data[0]), &mail); err != nil {
		t.Fatal(err)
	}
	var accepted struct {
		AcceptInvitation struct {
			Token      *string
			UserErrors []userError
		}
	}
	e.mustDo("", `mutation($t: String!) { acceptInvitation(input: {token: $t, password: "a long enough passphrase"}) { token userErrors { field code message } } }`,
		vars{"t": mail.Token}, &accepted)
	if accepted.AcceptInvitation.Token == nil {
		t.Fatalf("acceptInvitation: %+v", accepted.AcceptInvitation.UserErrors)
	}
	if e.userFacts(owner, invited) {
		t.Fatal("after accepting: invitationPending still true")
	}
}

// setUserGroup's payload names the group the user left, with its member
// count after the move, so a client can correct both groups' counts; moving
// a user to the group they are in leaves it null.
func TestSetUserGroupReturnsPreviousGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	uma, _ := e.user(owner, "uma@acme.example", "USER")
	groups := e.groups(owner)
	pro, jailed := groups["Pro"], groups["Jailed Users"]
	const move = `mutation($u: ID!, $g: ID!) { setUserGroup(input: {userId: $u, groupId: $g}) {
		user { group { id memberCount } } previousGroup { ` + groupFields + ` } userErrors { field code message } } }`
	var out struct {
		SetUserGroup struct {
			User *struct {
				Group struct {
					ID          string
					MemberCount int
				}
			}
			PreviousGroup *groupNode
			UserErrors    []userError
		}
	}
	e.mustDo(owner, move, vars{"u": uma, "g": jailed.ID}, &out)
	after := e.groups(owner)
	got := out.SetUserGroup
	if got.User == nil || got.User.Group.ID != jailed.ID || got.User.Group.MemberCount != after["Jailed Users"].MemberCount {
		t.Fatalf("moved user: %+v (groups after: %+v)", got, after)
	}
	if got.PreviousGroup == nil || got.PreviousGroup.ID != pro.ID || got.PreviousGroup.MemberCount != after["Pro"].MemberCount ||
		got.PreviousGroup.MemberCount != pro.MemberCount-1 {
		t.Fatalf("previousGroup = %+v; want Pro with %d members", got.PreviousGroup, after["Pro"].MemberCount)
	}
	e.mustDo(owner, move, vars{"u": uma, "g": jailed.ID}, &out)
	if out.SetUserGroup.User == nil || out.SetUserGroup.PreviousGroup != nil {
		t.Fatalf("moving to the same group: %+v", out.SetUserGroup)
	}
}

// UserViewer.can answers, for each role and group, exactly what the area's
// mutations then allow: each flag is checked against a real attempt.
func TestViewerCapabilitiesMatchTheMutations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	_, pro := e.user(owner, "pro@acme.example", "USER")
	jailedID, jailed := e.user(owner, "jailed@acme.example", "USER")
	e.setUserGroup(owner, jailedID, e.groups(owner)["Jailed Users"].ID)
	contactsID, contacts := e.user(owner, "contacts@acme.example", "USER")
	var g struct{ CreateGroup groupPayload }
	e.mustDo(owner, createGroup, vars{"n": "Contacts only", "p": []string{"MANAGE_CONTACTS"}}, &g)
	if g.CreateGroup.Group == nil {
		t.Fatalf("createGroup: %+v", g.CreateGroup.UserErrors)
	}
	e.setUserGroup(owner, contactsID, g.CreateGroup.Group.ID)

	attempts := map[string]string{
		"manageUsers":          `mutation($n: String!) { createUser(input: {email: $n, name: "N", role: USER}) { userErrors { code } } }`,
		"manageGroups":         `mutation($n: String!) { createGroup(input: {name: $n, permissions: []}) { userErrors { code } } }`,
		"createProjectFolders": `mutation($n: String!) { createProjectFolder(input: {name: $n}) { userErrors { code } } }`,
		"manageContacts":       `mutation($n: String!) { createContact(input: {email: $n, name: "N"}) { userErrors { code } } }`,
	}
	seen := map[string]map[bool]bool{} // each flag is seen both true and false
	for who, token := range map[string]string{"owner": owner, "admin": admin, "pro": pro, "jailed": jailed, "contacts": contacts} {
		var v struct {
			Viewer struct{ Can map[string]bool }
		}
		e.mustDo(token, `{ viewer { ... on UserViewer { can { manageUsers manageGroups createProjectFolders manageContacts } } } }`, nil, &v)
		if len(v.Viewer.Can) != len(attempts) {
			t.Fatalf("%s: can = %v", who, v.Viewer.Can)
		}
		for flag, mutation := range attempts {
			r := e.do(token, mutation, vars{"n": who + "-" + flag + "@acme.example"})
			forbidden := strings.Contains(string(r.Data), `"FORBIDDEN"`)
			for _, err := range r.Errors {
				forbidden = forbidden || err.code() == "FORBIDDEN"
			}
			if seen[flag] == nil {
				seen[flag] = map[bool]bool{}
			}
			seen[flag][v.Viewer.Can[flag]] = true
			if v.Viewer.Can[flag] == forbidden {
				t.Errorf("%s: can.%s = %v but the mutation answered %s %+v", who, flag, v.Viewer.Can[flag], r.Data, r.Errors)
			}
		}
	}
	for flag := range attempts {
		if len(seen[flag]) != 2 {
			t.Errorf("can.%s was %v for every viewer; the roles above should give both answers", flag, seen[flag])
		}
	}
}
