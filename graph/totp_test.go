package graph_test

import (
	"context"
	"testing"

	"github.com/skiffhq/skiff/tenant"
)

// Two-factor over GraphQL: a staff member without it may only enrol; with it,
// login answers TOTP_REQUIRED until a code is given; an owner's
// requireTotpForAdmins puts administrators under the same enrol-only rule.
func TestTotpOverGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const accounts = `{ accounts { edges { node { name } } } }`

	tok, _, errs := e.loginCode("support@skiff.example", testPassword, "")
	if tok != "" || len(errs) != 1 || errs[0].Code != "UNAUTHENTICATED" {
		t.Fatalf("login before the staff member exists: %q %+v", tok, errs)
	}
	e.staff("support@skiff.example") // enrols (login's helper) and logs in with a recovery code
	tok, required, errs := e.loginCode("support@skiff.example", testPassword, "")
	if tok != "" || required || len(errs) != 1 || errs[0].Code != "TOTP_REQUIRED" || errs[0].Field == nil || *errs[0].Field != "totpCode" {
		t.Fatalf("staff login without a code: %q %+v", tok, errs)
	}
	tok, _, errs = e.loginCode("support@skiff.example", testPassword, "12345")
	if tok != "" || len(errs) != 1 || errs[0].Code != "UNAUTHENTICATED" || *errs[0].Field != "totpCode" {
		t.Fatalf("staff login with a wrong code: %q %+v", tok, errs)
	}

	// A new staff member's first token may only enrol.
	_, err := e.svc.People.CreateStaff(tenant.SystemContext(context.Background()), "new@skiff.example", "New", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	tok, required, errs = e.loginCode("new@skiff.example", testPassword, "")
	if tok == "" || !required {
		t.Fatalf("new staff login: %q %v %+v", tok, required, errs)
	}
	if g := e.mustFail(tok, accounts, nil, "FORBIDDEN"); g.Message == "" {
		t.Fatal("no message")
	}
	e.mustFail(tok, `mutation { createAccount(input: {name: "X", ownerEmail: "x@x.example", ownerName: "X"}) { userErrors { message } } }`, nil, "FORBIDDEN")
	e.mustDo(tok, `{ viewer { __typename } }`, nil, nil)
	e.enrolTotp(tok)
	e.mustDo(tok, accounts, nil, nil) // the same token, now a full one

	// requireTotpForAdmins.
	_, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	_, user := e.user(owner, "user@acme.example", "USER")
	const set = `mutation($r: Boolean!) { setRequireTotpForAdmins(input: {require: $r}) { account { requireTotpForAdmins } userErrors { code message } } }`
	var out struct {
		SetRequireTotpForAdmins struct {
			Account    *struct{ RequireTotpForAdmins bool }
			UserErrors []userError
		}
	}
	e.mustFail(admin, set, vars{"r": true}, "FORBIDDEN")
	e.mustDo(owner, set, vars{"r": true}, &out)
	if out.SetRequireTotpForAdmins.Account != nil || len(out.SetRequireTotpForAdmins.UserErrors) != 1 || out.SetRequireTotpForAdmins.UserErrors[0].Code != "CONFLICT" {
		t.Fatalf("an owner without two-factor requiring it: %+v", out)
	}
	e.enrolTotp(owner)
	e.mustDo(owner, set, vars{"r": true}, &out)
	if a := out.SetRequireTotpForAdmins.Account; a == nil || !a.RequireTotpForAdmins {
		t.Fatalf("set: %+v", out)
	}
	const users = `{ viewer { ... on UserViewer { account { users { edges { node { email } } } } } } }`
	e.mustDo(user, users, nil, nil)
	e.mustFail(admin, `mutation { createUser(input: {email: "z@acme.example", name: "Z"}) { userErrors { message } } }`, nil, "FORBIDDEN")
	e.mustDo(admin, `{ viewer { __typename } }`, nil, nil)
	e.enrolTotp(admin)
	e.mustDo(admin, users, nil, nil)
}
