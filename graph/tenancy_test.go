package graph_test

import (
	"net/http"
	"strings"
	"testing"
)

// Every ID argument, given another account's object, answers exactly like a
// missing one.
func TestCrossTenantIDsAreNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, ownerA := e.account("Alpha", "owner@alpha.example")
	accountB, ownerB := e.account("Beta", "owner@beta.example")
	userB, _ := e.user(ownerB, "user@beta.example", "USER")
	var c struct {
		CreateContact struct{ Contact struct{ ID string } }
	}
	e.mustDo(ownerB, `mutation { createContact(input: {email: "c@beta.example", name: "C"}) { contact { id } } }`, nil, &c)
	contactB := c.CreateContact.Contact.ID
	missingUser := globalID("User", "6b1d2f0e-0000-4000-8000-000000000000")
	missingContact := globalID("Contact", "6b1d2f0e-0000-4000-8000-000000000000")

	userMutations := []string{
		`mutation($id: ID!) { updateUser(input: {id: $id, name: "Hijack"}) { user { id } } }`,
		`mutation($id: ID!) { deleteUser(input: {id: $id}) { user { id } } }`,
		`mutation($id: ID!) { restoreUser(input: {id: $id}) { user { id } } }`,
	}
	for _, q := range userMutations {
		foreign := e.mustFail(ownerA, q, vars{"id": userB}, "NOT_FOUND")
		missing := e.mustFail(ownerA, q, vars{"id": missingUser}, "NOT_FOUND")
		if foreign.Message != missing.Message {
			t.Errorf("%s: foreign %q vs missing %q", q, foreign.Message, missing.Message)
		}
	}
	contactMutations := []string{
		`mutation($id: ID!) { updateContact(input: {id: $id, name: "Hijack"}) { contact { id } } }`,
		`mutation($id: ID!) { deleteContact(input: {id: $id}) { contact { id } } }`,
		`mutation($id: ID!) { convertContactToUser(input: {contactId: $id}) { user { id } } }`,
	}
	for _, q := range contactMutations {
		foreign := e.mustFail(ownerA, q, vars{"id": contactB}, "NOT_FOUND")
		missing := e.mustFail(ownerA, q, vars{"id": missingContact}, "NOT_FOUND")
		if foreign.Message != missing.Message {
			t.Errorf("%s: foreign %q vs missing %q", q, foreign.Message, missing.Message)
		}
	}
	// Beta's SSH key: Beta's owner fetches it by ID, Alpha sees nothing.
	var k struct {
		AddSshKey struct{ SshKey struct{ ID string } }
	}
	e.mustDo(ownerB, `mutation($u: ID!) { addSshKey(input: {userId: $u, title: "laptop", publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl beta@laptop"}) { sshKey { id } userErrors { message } } }`,
		vars{"u": userB}, &k)
	keyB := k.AddSshKey.SshKey.ID
	var own struct{ Node *struct{ Title string } }
	e.mustDo(ownerB, `query($id: ID!) { node(id: $id) { ... on SshKey { title } } }`, vars{"id": keyB}, &own)
	if own.Node == nil || own.Node.Title != "laptop" {
		t.Fatalf("Beta's owner fetching Beta's key: %+v", own)
	}
	e.mustFail(ownerA, `mutation($id: ID!) { deleteSshKey(input: {id: $id}) { sshKey { id } } }`, vars{"id": keyB}, "NOT_FOUND")

	// node() and account(id:) see nothing of Beta.
	for _, id := range []string{userB, contactB, keyB, globalID("Account", accountB)} {
		var n struct{ Node *struct{ ID string } }
		e.mustDo(ownerA, `query($id: ID!) { node(id: $id) { id } }`, vars{"id": id}, &n)
		if n.Node != nil {
			t.Errorf("node(%s) visible across tenants", id)
		}
	}
	foreign := e.mustFail(ownerA, `query($id: ID!) { account(id: $id) { name } }`, vars{"id": globalID("Account", accountB)}, "NOT_FOUND")
	missing := e.mustFail(ownerA, `query($id: ID!) { account(id: $id) { name } }`, vars{"id": globalID("Account", "6b1d2f0e-0000-4000-8000-000000000000")}, "NOT_FOUND")
	if foreign.Message != missing.Message {
		t.Errorf("account: foreign %q vs missing %q", foreign.Message, missing.Message)
	}
	// Beta's data is untouched.
	var b struct {
		Account struct {
			Users struct {
				Edges []struct{ Node struct{ Name string } }
			}
		}
	}
	e.mustDo(ownerB, `{ account { users { edges { node { name } } } } }`, nil, &b)
	for _, ed := range b.Account.Users.Edges {
		if ed.Node.Name == "Hijack" {
			t.Fatal("Alpha renamed a Beta user")
		}
	}
}

func TestStaffOnlyOperations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Alpha", "owner@alpha.example")
	staff := e.staff("support@skiff.example")

	create := `mutation { createAccount(input: {name: "Gamma", ownerEmail: "owner@gamma.example", ownerName: "G", ownerPassword: "correct horse battery"}) { account { id name } owner { email role } userErrors { field message } } }`
	e.mustFail(owner, create, nil, "FORBIDDEN")
	e.mustFail(owner, `{ accounts { edges { node { name } } } }`, nil, "FORBIDDEN")
	e.mustFail("", `{ accounts { edges { node { name } } } }`, nil, "UNAUTHENTICATED")

	var out struct {
		CreateAccount struct {
			Account struct{ ID, Name string }
			Owner   struct{ Email, Role string }
		}
	}
	e.mustDo(staff, create, nil, &out)
	if out.CreateAccount.Owner.Role != "OWNER" || out.CreateAccount.Account.Name != "Gamma" {
		t.Fatalf("createAccount: %+v", out)
	}
	var v struct {
		Viewer struct {
			Typename string `json:"__typename"`
			Staff    struct{ Email string }
		}
	}
	e.mustDo(staff, `{ viewer { __typename ... on StaffViewer { staff { email } } } }`, nil, &v)
	if v.Viewer.Typename != "StaffViewer" || v.Viewer.Staff.Email != "support@skiff.example" {
		t.Fatalf("staff viewer: %+v", v)
	}
	var list struct {
		Accounts struct {
			Edges []struct{ Node struct{ Name string } }
		}
	}
	e.mustDo(staff, `{ accounts(search: "gam") { edges { node { name } } } }`, nil, &list)
	if len(list.Accounts.Edges) != 1 || list.Accounts.Edges[0].Node.Name != "Gamma" {
		t.Fatalf("accounts search: %+v", list)
	}
	// Staff can read any account's users by its ID.
	var acc struct {
		Account struct {
			Users struct {
				Edges []struct{ Node struct{ Email string } }
			}
		}
	}
	e.mustDo(staff, `query($id: ID) { account(id: $id) { users { edges { node { email } } } } }`, vars{"id": out.CreateAccount.Account.ID}, &acc)
	if len(acc.Account.Users.Edges) != 1 || acc.Account.Users.Edges[0].Node.Email != "owner@gamma.example" {
		t.Fatalf("staff reading users: %+v", acc)
	}
	// A duplicate owner email is a user error naming the owner field.
	var dup struct {
		CreateAccount struct {
			Account    *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(staff, create, nil, &dup)
	if dup.CreateAccount.Account != nil || len(dup.CreateAccount.UserErrors) != 1 || deref(dup.CreateAccount.UserErrors[0].Field) != "ownerEmail" {
		t.Fatalf("duplicate owner: %+v", dup)
	}
	// Several mistakes in the owner's fields come back at once, each under
	// its own input field.
	var bad struct {
		CreateAccount struct {
			Account    *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(staff, `mutation { createAccount(input: {name: "Delta", ownerEmail: "not-an-email", ownerName: " ", ownerPassword: "short"}) { account { id } userErrors { field message } } }`, nil, &bad)
	fields := map[string]bool{}
	for _, ue := range bad.CreateAccount.UserErrors {
		fields[deref(ue.Field)] = true
	}
	if bad.CreateAccount.Account != nil || !fields["ownerEmail"] || !fields["ownerName"] || !fields["ownerPassword"] {
		t.Fatalf("bad owner fields: %+v", bad)
	}
}

func TestProductionPosture(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Alpha", "owner@alpha.example")
	// Introspection is off by default.
	r := e.do(owner, `{ __schema { types { name } } }`, nil)
	if len(r.Errors) == 0 {
		t.Fatal("introspection answered")
	}
	// No "did you mean" suggestions that leak the schema.
	r = e.do(owner, `{ viewr { __typename } }`, nil)
	if len(r.Errors) == 0 || strings.Contains(r.Errors[0].Message, "Did you mean") {
		t.Fatalf("suggestion leaked: %+v", r.Errors)
	}
	// Depth limit.
	deep := `{ viewer { ... on UserViewer { user { account { users { edges { node { account { users { edges { node { account { users { edges { node { id } } } } } } } } } } } } } } } }`
	r = e.do(owner, deep, nil)
	if len(r.Errors) == 0 || r.Errors[0].code() != "QUERY_TOO_DEEP" {
		t.Fatalf("deep query: %+v", r.Errors)
	}
	// Health and readiness answer without a login.
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
	// CORS: the configured origin may call the API, another may not.
	for origin, allowed := range map[string]bool{"https://admin.example": true, "https://evil.example": false} {
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin") == origin; got != allowed {
			t.Errorf("CORS for %s: allowed=%v, want %v", origin, got, allowed)
		}
	}
	// Body cap.
	big := `{ viewer { __typename } }` + strings.Repeat(" ", 70<<10)
	r = e.do(owner, big, nil)
	if r.status != 413 && len(r.Errors) == 0 {
		t.Fatalf("oversized body accepted: status %d", r.status)
	}
}

// createAccount reports a bad account name and every bad owner field at once,
// each on its field (owner fields prefixed), and creates nothing.
func TestCreateAccountReportsEveryBadField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	staff := e.staff("support@skiff.example")
	var out struct {
		CreateAccount struct {
			Account    *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(staff, `mutation { createAccount(input: {name: " ", ownerEmail: "nope", ownerName: "", ownerPassword: "short"}) {
		account { id } userErrors { field code message } } }`, nil, &out)
	if out.CreateAccount.Account != nil || invalidFields(t, out.CreateAccount.UserErrors) != "name,ownerEmail,ownerName,ownerPassword" {
		t.Fatalf("want errors on name, ownerEmail, ownerName and ownerPassword, got %+v", out.CreateAccount)
	}
	var accounts struct {
		Accounts struct {
			Edges []struct{ Node struct{ Name string } }
		}
	}
	e.mustDo(staff, `{ accounts { edges { node { name } } } }`, nil, &accounts)
	if len(accounts.Accounts.Edges) != 0 {
		t.Fatalf("accounts after a refused createAccount: %+v", accounts)
	}
}
