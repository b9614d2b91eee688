package graph_test

import (
	"testing"
)

// Every mutation with more than one checked input reports every bad field
// at once, each on its field, so a form needs one submit.
func TestMutationsReportEveryBadFieldAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	_, user := e.user(owner, "user@acme.example", "USER")
	fields := func(what string, out map[string]struct{ UserErrors []userError }, want string) {
		t.Helper()
		for _, p := range out {
			if got := invalidFields(t, p.UserErrors); got != want {
				t.Errorf("%s: user errors on %q, want on %q (%+v)", what, got, want, p.UserErrors)
			}
		}
		if len(out) != 1 {
			t.Errorf("%s: payloads %+v", what, out)
		}
		clear(out) // for the next mutation
	}

	// Groups: a built-in group keeps its name, and Jailed Users never get My Files.
	jailed := e.groups(owner)["Jailed Users"]
	var out map[string]struct{ UserErrors []userError }
	e.mustDo(owner, `mutation($id: ID!) { updateGroup(input: {id: $id, name: "Outside", permissions: [SFTP_MY_FILES]}) {
		group { id } userErrors { field code message retryAfter } } }`, vars{"id": jailed.ID}, &out)
	fields("updateGroup", out, "name,permissions")
	e.mustDo(owner, `mutation { createGroup(input: {name: "  ", permissions: []}) { group { id } userErrors { field code message retryAfter } } }`, nil, &out)
	fields("createGroup", out, "name")

	// Passwords: a wrong current password and a weak new one together.
	e.mustDo(user, `mutation { changePassword(input: {currentPassword: "not it at all", newPassword: "short"}) {
		ok userErrors { field code message retryAfter } } }`, nil, &out)
	fields("changePassword", out, "currentPassword,newPassword")
	// One-time links: a bad link and a weak password together.
	e.mustDo("", `mutation { resetPassword(input: {token: "no such token", password: "short"}) { ok userErrors { field code message retryAfter } } }`, nil, &out)
	fields("resetPassword", out, "token,password")
	e.mustDo("", `mutation { acceptInvitation(input: {token: "no such token", password: "short"}) { token userErrors { field code message retryAfter } } }`, nil, &out)
	fields("acceptInvitation", out, "token,password")

	// Two-factor: a wrong password and a wrong code together, and nothing
	// is spent (the right pair still works after).
	codes := e.enrolTotp(user)
	e.mustDo(user, `mutation { disableTotp(input: {password: "not it at all", code: "000000"}) { ok userErrors { field code message retryAfter } } }`, nil, &out)
	fields("disableTotp", out, "password,code")
	var ok struct{ DisableTotp struct{ Ok bool } }
	e.mustDo(user, `mutation($p: String!, $c: String!) { disableTotp(input: {password: $p, code: $c}) { ok } }`,
		vars{"p": testPassword, "c": codes[0]}, &ok)
	if !ok.DisableTotp.Ok {
		t.Errorf("disableTotp with the right password and a recovery code: %+v", ok)
	}
}
