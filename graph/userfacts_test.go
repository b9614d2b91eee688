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
