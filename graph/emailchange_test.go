package graph_test

import "testing"

// Changing one's own email needs the current password; the old address is
// told what changed, the change is audited, and the user's other API tokens
// end. An administrator changing someone's email needs no password of theirs,
// and ends all of that user's tokens.
func TestEmailChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	userID, user := e.user(owner, "user@acme.example", "USER")
	otherSession := e.login("user@acme.example", testPassword)

	const change = `mutation($id: ID!, $e: String!, $p: String) { updateUser(input: {id: $id, email: $e, currentPassword: $p}) { user { email } userErrors { field code message } } }`
	var out struct {
		UpdateUser struct {
			User       *struct{ Email string }
			UserErrors []userError
		}
	}
	for _, pw := range []any{nil, "", "wrong password 123"} {
		e.mustDo(user, change, vars{"id": userID, "e": "new@acme.example", "p": pw}, &out)
		if out.UpdateUser.User != nil || len(out.UpdateUser.UserErrors) != 1 || deref(out.UpdateUser.UserErrors[0].Field) != "currentPassword" {
			t.Fatalf("own email change with password %v: %+v", pw, out.UpdateUser)
		}
	}
	e.mustDo(user, change, vars{"id": userID, "e": "new@acme.example", "p": testPassword}, &out)
	if out.UpdateUser.User == nil || out.UpdateUser.User.Email != "new@acme.example" {
		t.Fatalf("own email change: %+v", out.UpdateUser)
	}
	// The token that made the change still works; the user's other one does not.
	e.mustDo(user, `{ viewer { __typename } }`, nil, nil)
	e.mustFail(otherSession, `{ viewer { __typename } }`, nil, "UNAUTHENTICATED")
	// The new email logs in, the old one no longer does.
	e.login("new@acme.example", testPassword)

	// An owner changes the user's email without the user's password: every token of theirs ends.
	e.mustDo(owner, change, vars{"id": userID, "e": "third@acme.example"}, &out)
	if out.UpdateUser.User == nil {
		t.Fatalf("owner's change: %+v", out.UpdateUser)
	}
	e.mustFail(user, `{ viewer { __typename } }`, nil, "UNAUTHENTICATED")

	var notes struct {
		Account struct {
			Notifications struct {
				Edges []struct {
					Node struct{ Kind, Recipient string }
				}
			}
			AuditEvents struct {
				Edges []struct{ Node struct{ Kind string } }
			}
		}
	}
	e.mustDo(owner, `{ account { notifications(first: 100) { edges { node { kind: kindName recipient } } }
		auditEvents(first: 100, filter: {kinds: ["user.email_changed"]}) { edges { node { kind: kindName } } } } }`, nil, &notes)
	told := map[string]bool{}
	for _, n := range notes.Account.Notifications.Edges {
		if n.Node.Kind == "email_changed" {
			told[n.Node.Recipient] = true
		}
	}
	if !told["user@acme.example"] || !told["new@acme.example"] || len(told) != 2 {
		t.Fatalf("email_changed went to %v, want the two old addresses", told)
	}
	if n := len(notes.Account.AuditEvents.Edges); n != 2 {
		t.Fatalf("%d user.email_changed audit events, want 2", n)
	}
}
