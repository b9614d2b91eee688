package graph_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestLoginViewerLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")

	var v struct {
		Viewer struct {
			Typename string `json:"__typename"`
			User     struct{ Email, Role string }
			Account  struct{ Name string }
		}
	}
	e.mustDo(owner, `{ viewer { __typename ... on UserViewer { user { email role } account { name } } } }`, nil, &v)
	if v.Viewer.Typename != "UserViewer" || v.Viewer.User.Email != "owner@acme.example" || v.Viewer.User.Role != "OWNER" || v.Viewer.Account.Name != "Acme" {
		t.Fatalf("viewer = %+v", v.Viewer)
	}

	// Anonymous: viewer is null, account needs a login.
	var anon struct{ Viewer *struct{} }
	e.mustDo("", `{ viewer { __typename } }`, nil, &anon)
	if anon.Viewer != nil {
		t.Fatal("anonymous viewer should be null")
	}
	e.mustFail("", `{ account { name } }`, nil, "UNAUTHENTICATED")

	// Logout revokes the token: the next request is refused with 401.
	e.mustDo(owner, `mutation { logout { ok } }`, nil, nil)
	r := e.do(owner, `{ viewer { __typename } }`, nil)
	if r.status != http.StatusUnauthorized || len(r.Errors) != 1 || r.Errors[0].code() != "UNAUTHENTICATED" {
		t.Fatalf("revoked token: status %d errors %+v", r.status, r.Errors)
	}
	// A made-up token is refused the same way.
	r = e.do("skf_madeup", `{ viewer { __typename } }`, nil)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("bogus token: status %d", r.status)
	}
}

func TestLoginFailuresLookAlikeAndAreThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.account("Acme", "owner@acme.example")
	q := `mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token userErrors { field code message retryAfter } } }`
	var wrong, unknown struct {
		Login struct {
			Token      *string
			UserErrors []userError
		}
	}
	e.mustDo("", q, vars{"e": "owner@acme.example", "p": "not the password"}, &wrong)
	e.mustDo("", q, vars{"e": "nobody@acme.example", "p": "not the password"}, &unknown)
	if wrong.Login.Token != nil || len(wrong.Login.UserErrors) != 1 || wrong.Login.UserErrors[0].Code != "UNAUTHENTICATED" {
		t.Fatalf("wrong password: %+v", wrong.Login)
	}
	if wrong.Login.UserErrors[0].Message != unknown.Login.UserErrors[0].Message {
		t.Fatalf("wrong password and unknown email differ: %q vs %q", wrong.Login.UserErrors[0].Message, unknown.Login.UserErrors[0].Message)
	}
	// Keep failing for one email from one address: after tenant.PairLimit
	// (10) attempts, even the right password is refused from that address.
	for range 9 {
		e.mustDo("", q, vars{"e": "owner@acme.example", "p": "still wrong"}, nil)
	}
	var locked struct {
		Login struct {
			Token      *string
			UserErrors []userError
		}
	}
	e.mustDo("", q, vars{"e": "owner@acme.example", "p": testPassword}, &locked)
	if locked.Login.Token != nil || len(locked.Login.UserErrors) != 1 || locked.Login.UserErrors[0].Code != "LIMIT" ||
		!strings.Contains(locked.Login.UserErrors[0].Message, "try again in") {
		t.Fatalf("after 10 failures: %+v", locked.Login)
	}
	// The wait is machine-readable too: seconds, as the message says.
	ue := locked.Login.UserErrors[0]
	if ue.RetryAfter == nil || *ue.RetryAfter < 1 || *ue.RetryAfter > 15*60 ||
		!strings.Contains(ue.Message, fmt.Sprintf("try again in %d seconds", *ue.RetryAfter)) {
		t.Fatalf("LIMIT without its retryAfter: %+v (retryAfter %v)", ue, ue.RetryAfter)
	}
	if wrong.Login.UserErrors[0].RetryAfter != nil {
		t.Fatalf("retryAfter on a wrong password: %d", *wrong.Login.UserErrors[0].RetryAfter)
	}
}

// A form's mistakes come back together, each with its field.
func TestCreateUserReportsEveryBadField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	var out struct {
		CreateUser struct {
			User       *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation { createUser(input: {email: "not an email", name: "  ", password: "short"}) {
		user { id } userErrors { field code message retryAfter } } }`, nil, &out)
	var fields []string
	for _, ue := range out.CreateUser.UserErrors {
		if ue.Code != "INVALID" || ue.Field == nil || ue.RetryAfter != nil {
			t.Fatalf("user error: %+v", ue)
		}
		fields = append(fields, *ue.Field)
	}
	if out.CreateUser.User != nil || strings.Join(fields, ",") != "email,name,password" {
		t.Fatalf("want errors on email, name and password, got %+v", out.CreateUser)
	}
	// Nothing was created.
	var users struct {
		Account struct {
			Users struct {
				Edges []struct{ Node struct{ Email string } }
			}
		}
	}
	e.mustDo(owner, `{ account { users { edges { node { email } } } } }`, nil, &users)
	if len(users.Account.Users.Edges) != 1 {
		t.Fatalf("%d users after a refused createUser", len(users.Account.Users.Edges))
	}
}

func TestUsersLifecycleAndRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	_ = accountID
	adminID, admin := e.user(owner, "admin@acme.example", "ADMIN")
	userID, user := e.user(admin, "user@acme.example", "USER")

	// A plain user cannot manage users, and sees only themselves.
	e.mustFail(user, `mutation { createUser(input: {email: "x@acme.example", name: "X"}) { user { id } } }`, nil, "FORBIDDEN")
	var list struct {
		Account struct {
			Users struct {
				Edges []struct{ Node struct{ ID, Email string } }
			}
		}
	}
	e.mustDo(user, `{ account { users { edges { node { id email } } } } }`, nil, &list)
	if len(list.Account.Users.Edges) != 1 || list.Account.Users.Edges[0].Node.ID != userID {
		t.Fatalf("user sees %+v", list.Account.Users.Edges)
	}
	// ...but may rename themselves, not change their role.
	e.mustDo(user, `mutation($id: ID!) { updateUser(input: {id: $id, name: "Renamed"}) { user { name } userErrors { message } } }`, vars{"id": userID}, nil)
	e.mustFail(user, `mutation($id: ID!) { updateUser(input: {id: $id, role: ADMIN}) { user { role } } }`, vars{"id": userID}, "FORBIDDEN")
	// Another user's ID is simply not found for a plain user.
	e.mustFail(user, `mutation($id: ID!) { updateUser(input: {id: $id, name: "X"}) { user { id } } }`, vars{"id": adminID}, "NOT_FOUND")

	// An admin cannot make owners, nor delete or demote one.
	var ue struct {
		CreateUser struct {
			User       *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(admin, `mutation { createUser(input: {email: "o2@acme.example", name: "O2", role: OWNER}) { user { id } userErrors { field code message } } }`, nil, &ue)
	if ue.CreateUser.User != nil || len(ue.CreateUser.UserErrors) != 1 || *ue.CreateUser.UserErrors[0].Field != "role" {
		t.Fatalf("admin made an owner: %+v", ue.CreateUser)
	}
	var me struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(owner, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &me)
	ownerID := me.Viewer.User.ID
	e.mustFail(admin, `mutation($id: ID!) { deleteUser(input: {id: $id}) { user { id } } }`, vars{"id": ownerID}, "FORBIDDEN")
	e.mustFail(admin, `mutation($id: ID!) { updateUser(input: {id: $id, role: USER}) { user { id } } }`, vars{"id": ownerID}, "FORBIDDEN")

	// The last owner cannot demote themselves.
	var demote struct {
		UpdateUser struct {
			User       *struct{ Role string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation($id: ID!) { updateUser(input: {id: $id, role: ADMIN}) { user { role } userErrors { field code message } } }`, vars{"id": ownerID}, &demote)
	if demote.UpdateUser.User != nil || len(demote.UpdateUser.UserErrors) != 1 || !strings.Contains(demote.UpdateUser.UserErrors[0].Message, "one owner") {
		t.Fatalf("demoting the last owner: %+v", demote.UpdateUser)
	}

	// Delete: the user's token stops working at once; restore brings them back.
	e.mustDo(admin, `mutation($id: ID!) { deleteUser(input: {id: $id}) { user { deletedAt } } }`, vars{"id": userID}, nil)
	if r := e.do(user, `{ viewer { __typename } }`, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("deleted user's token still works: %d", r.status)
	}
	var deleted struct {
		Account struct {
			Users struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	e.mustDo(admin, `{ account { users(filter: {deleted: DELETED}) { edges { node { id } } } } }`, nil, &deleted)
	if len(deleted.Account.Users.Edges) != 1 || deleted.Account.Users.Edges[0].Node.ID != userID {
		t.Fatalf("deleted filter: %+v", deleted.Account.Users.Edges)
	}
	var restored struct {
		RestoreUser struct {
			User       *struct{ DeletedAt *string }
			UserErrors []userError
		}
	}
	e.mustDo(admin, `mutation($id: ID!) { restoreUser(input: {id: $id}) { user { deletedAt } userErrors { message } } }`, vars{"id": userID}, &restored)
	if restored.RestoreUser.User == nil || restored.RestoreUser.User.DeletedAt != nil {
		t.Fatalf("restore: %+v", restored.RestoreUser)
	}
	if tok := e.login("user@acme.example", testPassword); tok == "" {
		t.Fatal("restored user cannot log in")
	}

	// Nobody can delete themselves.
	var self struct {
		DeleteUser struct{ UserErrors []userError }
	}
	e.mustDo(admin, `mutation($id: ID!) { deleteUser(input: {id: $id}) { userErrors { message } } }`, vars{"id": adminID}, &self)
	if len(self.DeleteUser.UserErrors) != 1 {
		t.Fatalf("self-delete: %+v", self.DeleteUser)
	}
}

func TestUserSearchAndPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	for _, n := range []string{"alice", "bob", "carol", "dave"} {
		e.mustDo(owner, `mutation($e: String!, $n: String!) { createUser(input: {email: $e, name: $n}) { userErrors { message } } }`,
			vars{"e": n + "@acme.example", "n": n}, nil)
	}
	type page struct {
		Account struct {
			Users struct {
				Edges    []struct{ Node struct{ Name string } }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
	}
	var names []string
	var after *string
	for {
		var p page
		e.mustDo(owner, `query($a: String) { account { users(first: 2, after: $a) { edges { node { name } } pageInfo { hasNextPage endCursor } } } }`, vars{"a": after}, &p)
		for _, ed := range p.Account.Users.Edges {
			names = append(names, ed.Node.Name)
		}
		if !p.Account.Users.PageInfo.HasNextPage {
			break
		}
		after = p.Account.Users.PageInfo.EndCursor
	}
	if strings.Join(names, ",") != "Acme Owner,alice,bob,carol,dave" {
		t.Fatalf("paged names = %v", names)
	}
	var s page
	e.mustDo(owner, `{ account { users(filter: {search: "CAR"}) { edges { node { name } } } } }`, nil, &s)
	if len(s.Account.Users.Edges) != 1 || s.Account.Users.Edges[0].Node.Name != "carol" {
		t.Fatalf("search: %+v", s.Account.Users.Edges)
	}
	// Search text is matched literally, not as a pattern.
	e.mustDo(owner, `{ account { users(filter: {search: "%"}) { edges { node { name } } } } }`, nil, &s)
	if len(s.Account.Users.Edges) != 0 {
		t.Fatalf("search %% matched %+v", s.Account.Users.Edges)
	}
	e.mustFail(owner, `{ account { users(first: 100000) { edges { cursor } } } }`, nil, "BAD_USER_INPUT")
	e.mustFail(owner, `{ account { users(after: "garbage") { edges { cursor } } } }`, nil, "BAD_USER_INPUT")
	// A page of none is refused (1–200), not served as the default page,
	// in the text and in a variable, in both directions and on any list.
	for _, q := range []string{
		`{ account { users(first: 0) { edges { cursor } } } }`,
		`{ account { users(last: 0) { edges { cursor } } } }`,
		`{ account { contacts(first: 0) { totalCount } } }`,
	} {
		if x := e.mustFail(owner, q, nil, "BAD_USER_INPUT"); !strings.Contains(x.Message, "between 1 and") {
			t.Errorf("%s: %q", q, x.Message)
		}
	}
	e.mustFail(owner, `query($n: Int) { account { users(first: $n) { edges { cursor } } } }`, vars{"n": 0}, "BAD_USER_INPUT")
	// The refusal nulls the list, not the account around it.
	r := e.do(owner, `{ account { name users(first: 500) { totalCount } } }`, nil)
	var a struct{ Account *struct{ Name string } }
	if err := json.Unmarshal(r.Data, &a); err != nil || a.Account == nil || a.Account.Name != "Acme" ||
		len(r.Errors) != 1 || fmt.Sprint(r.Errors[0].Path) != "[account users]" {
		t.Errorf("a refused page size: data %s, errors %+v; want the account, and the error at users", r.Data, r.Errors)
	}
	e.mustDo(owner, `query($n: Int) { account { users(first: $n) { edges { cursor } } } }`, vars{"n": nil}, &s)
}

func TestContactsAndConversion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	_, user := e.user(owner, "user@acme.example", "USER")
	var c struct {
		CreateContact struct {
			Contact    *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation { createContact(input: {email: "pat@client.example", name: "Pat", company: "Client"}) { contact { id } userErrors { message } } }`, nil, &c)
	if c.CreateContact.Contact == nil {
		t.Fatalf("create contact: %+v", c.CreateContact)
	}
	cid := c.CreateContact.Contact.ID
	e.mustFail(user, `{ account { contacts { edges { node { id } } } } }`, nil, "FORBIDDEN")
	e.mustDo(owner, `mutation($id: ID!) { updateContact(input: {id: $id, phone: "+1 555 0100"}) { userErrors { message } } }`, vars{"id": cid}, nil)

	var conv struct {
		ConvertContactToUser struct {
			User       *struct{ Name, Email, Role string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation($id: ID!) { convertContactToUser(input: {contactId: $id}) { user { name email role } userErrors { message } } }`, vars{"id": cid}, &conv)
	u := conv.ConvertContactToUser.User
	if u == nil || u.Name != "Pat" || u.Email != "pat@client.example" || u.Role != "USER" {
		t.Fatalf("converted user = %+v", conv.ConvertContactToUser)
	}
	var list struct {
		Account struct {
			Contacts struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	e.mustDo(owner, `{ account { contacts { edges { node { id } } } } }`, nil, &list)
	if len(list.Account.Contacts.Edges) != 0 {
		t.Fatalf("converted contact still listed: %+v", list.Account.Contacts.Edges)
	}
	// Converting again: the contact is gone.
	e.mustFail(owner, `mutation($id: ID!) { convertContactToUser(input: {contactId: $id}) { user { id } } }`, vars{"id": cid}, "NOT_FOUND")
}

func TestBadInputIsAUserError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	cases := []struct {
		name, email, userName, field string
	}{
		{"empty email", "", "X", "email"},
		{"malformed email", "not-an-email", "X", "email"},
		{"email with name", "X <x@acme.example>", "X", "email"},
		{"oversized email", strings.Repeat("a", 250) + "@acme.example", "X", "email"},
		{"empty name", "x@acme.example", "   ", "name"},
		{"oversized name", "x@acme.example", strings.Repeat("n", 201), "name"},
		{"control characters", "x@acme.example", "a\x00b", "name"},
		{"duplicate email", "owner@acme.example", "Again", "email"},
	}
	for _, tc := range cases {
		var out struct {
			CreateUser struct {
				User       *struct{ ID string }
				UserErrors []userError
			}
		}
		e.mustDo(owner, `mutation($e: String!, $n: String!) { createUser(input: {email: $e, name: $n}) { user { id } userErrors { field code message } } }`,
			vars{"e": tc.email, "n": tc.userName}, &out)
		if out.CreateUser.User != nil || len(out.CreateUser.UserErrors) != 1 || deref(out.CreateUser.UserErrors[0].Field) != tc.field {
			t.Errorf("%s: %+v", tc.name, out.CreateUser)
		}
	}
	// A short initial password is refused.
	var pw struct {
		CreateUser struct{ UserErrors []userError }
	}
	e.mustDo(owner, `mutation { createUser(input: {email: "p@acme.example", name: "P", password: "short"}) { userErrors { field code } } }`, nil, &pw)
	if len(pw.CreateUser.UserErrors) != 1 || deref(pw.CreateUser.UserErrors[0].Field) != "password" {
		t.Errorf("short password: %+v", pw.CreateUser)
	}
	// IDs that are malformed, unknown, or of the wrong type are all NOT_FOUND.
	var contact struct {
		CreateContact struct{ Contact struct{ ID string } }
	}
	e.mustDo(owner, `mutation { createContact(input: {email: "c@client.example", name: "C"}) { contact { id } } }`, nil, &contact)
	for _, id := range []string{"", "garbage", globalID("User", "00000000-0000-0000-0000-000000000000"), globalID("User", "1; DROP TABLE users"), contact.CreateContact.Contact.ID, strings.Repeat("A", 5000)} {
		g := e.mustFail(owner, `mutation($id: ID!) { deleteUser(input: {id: $id}) { user { id } } }`, vars{"id": id}, "NOT_FOUND")
		if g.Message != "user not found" {
			t.Errorf("id %.20q: message %q", id, g.Message)
		}
	}
}

func globalID(typ, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(typ + ":" + id))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// updateUser and createContact also report every bad field at once.
func TestUpdateUserAndCreateContactReportEveryBadField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	userID, _ := e.user(owner, "user@acme.example", "USER")
	fieldsOf := func(errs []userError) string {
		var fields []string
		for _, ue := range errs {
			if ue.Code != "INVALID" || ue.Field == nil {
				t.Fatalf("user error: %+v", ue)
			}
			fields = append(fields, *ue.Field)
		}
		return strings.Join(fields, ",")
	}
	var upd struct {
		UpdateUser struct {
			User       *struct{ Name string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation($id: ID!) { updateUser(input: {id: $id, email: "nope", name: " "}) {
		user { name } userErrors { field code message } } }`, vars{"id": userID}, &upd)
	if upd.UpdateUser.User != nil || fieldsOf(upd.UpdateUser.UserErrors) != "email,name" {
		t.Fatalf("updateUser: %+v", upd.UpdateUser)
	}
	var con struct {
		CreateContact struct {
			Contact    *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(owner, `mutation($phone: String!) { createContact(input: {email: "nope", name: "", company: "Acme", phone: $phone}) {
		contact { id } userErrors { field code message } } }`, vars{"phone": strings.Repeat("5", 51)}, &con)
	if con.CreateContact.Contact != nil || fieldsOf(con.CreateContact.UserErrors) != "email,name,phone" {
		t.Fatalf("createContact: %+v", con.CreateContact)
	}
}
