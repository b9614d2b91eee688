package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/skiffhq/skiff/graph"
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

// Someone holding only a user's token, not their password, must not turn
// two-factor on with their own app: the real user could then no longer log
// in to the API, and a password reset would not undo it. confirmTotpEnrolment
// needs the current password, counted as a login attempt; only the
// enrol-only token that login issued after checking the password may leave it
// out, and only once.
func TestTotpEnrolmentNeedsThePassword(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	_, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	_, victim := e.user(owner, "user@acme.example", "USER")
	const thief = "198.51.100.7"
	confirm := func(from, token, secret string, password any) (codes []string, errs []userError) {
		t.Helper()
		code, err := totp.GenerateCode(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			ConfirmTotpEnrolment struct {
				RecoveryCodes []string
				UserErrors    []userError
			}
		}
		r := e.doFrom(from, token, confirmTotp, vars{"c": code, "p": password})
		if len(r.Errors) > 0 {
			t.Fatalf("confirmTotpEnrolment: %+v", r.Errors)
		}
		if err := json.Unmarshal(r.Data, &out); err != nil {
			t.Fatal(err)
		}
		return out.ConfirmTotpEnrolment.RecoveryCodes, out.ConfirmTotpEnrolment.UserErrors
	}
	wantError := func(what string, codes []string, errs []userError, code, message string) {
		t.Helper()
		if codes != nil || len(errs) != 1 || errs[0].Code != code || errs[0].Field == nil || *errs[0].Field != "currentPassword" ||
			!strings.HasPrefix(errs[0].Message, message) {
			t.Fatalf("%s: %v %+v; want %s on currentPassword, %q", what, codes, errs, code, message)
		}
	}

	// The thief, with the user's token only.
	secret := e.startTotp(victim)
	codes, errs := confirm(thief, victim, secret, nil)
	wantError("without a password", codes, errs, "INVALID", "enter your current password to turn on two-factor authentication")
	codes, errs = confirm(thief, victim, secret, "a guess")
	wantError("with a wrong password", codes, errs, "INVALID", "the current password is not correct")
	for i := 2; i <= tenant.PairLimit; i++ {
		codes, errs = confirm(thief, victim, secret, fmt.Sprintf("guess %d", i))
		wantError(fmt.Sprintf("guess %d", i), codes, errs, "INVALID", "the current password is not correct")
	}
	codes, errs = confirm(thief, victim, secret, testPassword)
	wantError("the right password after as many guesses as a login gets", codes, errs, "LIMIT", "too many wrong passwords")
	// Two-factor stayed off: the user logs in without a code, and enrols
	// with the password.
	if tok, required, errs := e.loginCode("user@acme.example", testPassword, ""); tok == "" || required {
		t.Fatalf("the user's login after the thief's attempts: %v %+v", required, errs)
	}
	if codes, errs = confirm("", victim, secret, testPassword); len(codes) != 10 || len(errs) != 0 {
		t.Fatalf("the user's own enrolment with the password: %v %+v", codes, errs)
	}

	// An administrator's token from before the account required two-factor
	// is enrol-only now, but its login did not check for that: the password
	// is needed.
	e.enrolTotp(owner)
	e.mustDo(owner, `mutation { setRequireTotpForAdmins(input: {require: true}) { userErrors { message } } }`, nil, nil)
	codes, errs = confirm("", admin, e.startTotp(admin), nil)
	wantError("an administrator's older token without a password", codes, errs, "INVALID", "enter your current password")

	// The enrol-only token of a login may enrol without it, once.
	tok, required, _ := e.loginCode("admin@acme.example", testPassword, "")
	if !required {
		t.Fatal("the administrator's login is not enrol-only")
	}
	codes, errs = confirm("", tok, e.startTotp(tok), nil)
	if len(codes) != 10 || len(errs) != 0 {
		t.Fatalf("the enrol-only login's enrolment: %v %+v", codes, errs)
	}
	var off struct{ DisableTotp struct{ Ok bool } }
	e.mustDo(tok, `mutation($p: String!, $c: String!) { disableTotp(input: {password: $p, code: $c}) { ok } }`,
		vars{"p": testPassword, "c": codes[0]}, &off)
	if !off.DisableTotp.Ok {
		t.Fatal("disableTotp failed")
	}
	codes, errs = confirm("", tok, e.startTotp(tok), nil)
	wantError("the same token again without a password", codes, errs, "INVALID", "enter your current password")
}
