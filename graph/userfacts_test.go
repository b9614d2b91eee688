package graph_test

import (
	"encoding/json"
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
