package graph_test

import "testing"

// An email names one principal that can log in, whatever its case: a user
// cannot take a staff member's email (nor another user's, in any account),
// so no one can lock staff out by making the login lookup find two.
func TestLoginEmailIsOnePrincipal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.staff("support@skiff.example")
	_, owner := e.account("Acme", "owner@acme.example")
	userID, _ := e.user(owner, "user@acme.example", "USER")
	_, other := e.account("Other", "owner@other.example")

	inUse := func(what string, errs []userError) {
		t.Helper()
		if len(errs) != 1 || errs[0].Code != "CONFLICT" || errs[0].Field == nil || *errs[0].Field != "email" ||
			errs[0].Message != "this email is already in use" {
			t.Fatalf("%s: want the email-in-use error, got %+v", what, errs)
		}
	}
	for _, email := range []string{"SUPPORT@skiff.example", "support@SKIFF.EXAMPLE", "User@Acme.Example"} {
		var c struct {
			CreateUser struct{ UserErrors []userError }
		}
		e.mustDo(other, `mutation($e: String!) { createUser(input: {email: $e, name: "Taker", password: "correct horse battery"}) { userErrors { field code message } } }`,
			vars{"e": email}, &c)
		inUse("createUser "+email, c.CreateUser.UserErrors)

		var u struct {
			UpdateUser struct{ UserErrors []userError }
		}
		e.mustDo(owner, `mutation($id: ID!, $e: String!) { updateUser(input: {id: $id, email: $e}) { userErrors { field code message } } }`,
			vars{"id": userID, "e": email}, &u)
		if email != "User@Acme.Example" { // the user's own email, in another case, is theirs to keep
			inUse("updateUser "+email, u.UpdateUser.UserErrors)
		}
	}
	// Staff and the user still log in.
	e.login("support@skiff.example", testPassword)
	e.login("user@acme.example", testPassword)

	// A deleted user's email is free again; restoring them then fails clearly.
	e.mustDo(owner, `mutation($id: ID!) { deleteUser(input: {id: $id}) { user { id } } }`, vars{"id": userID}, nil)
	e.user(other, "USER@acme.example", "USER")
	var r struct {
		RestoreUser struct{ UserErrors []userError }
	}
	e.mustDo(owner, `mutation($id: ID!) { restoreUser(input: {id: $id}) { userErrors { field code message } } }`, vars{"id": userID}, &r)
	if len(r.RestoreUser.UserErrors) != 1 || r.RestoreUser.UserErrors[0].Code != "CONFLICT" {
		t.Fatalf("restore onto a taken email: %+v", r.RestoreUser.UserErrors)
	}
}
