package graph_test

import (
	"strings"
	"testing"
)

// A Time or Bytes argument that does not parse, in the query or in a
// variable, is the client's mistake: BAD_USER_INPUT naming the argument,
// never INTERNAL (which would also log it as a server failure).
func TestBadScalarArgumentsAreBadUserInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	var me struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(owner, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &me)
	quota := `mutation($id: ID!, $b: Bytes) { setUserStorageQuota(input: {userId: $id, bytes: $b}) { userErrors { code } } }`
	for _, tc := range []struct {
		name, query string
		v           vars
		field       string
	}{
		{"a Time literal", `{ account { auditEvents(filter: {since: "yesterday"}) { edges { cursor } } } }`, nil, "filter.since"},
		{"a Time variable", `query($s: Time) { account { auditEvents(filter: {since: $s}) { edges { cursor } } } }`, vars{"s": "2026-13-45T99:00:00Z"}, "filter.since"},
		{"a Bytes variable", quota, vars{"id": me.Viewer.User.ID, "b": "1e30"}, "input.bytes"},
		{"a Bytes literal", `mutation { setUserStorageQuota(input: {userId: "` + me.Viewer.User.ID + `", bytes: "lots"}) { userErrors { code } } }`, nil, "input.bytes"},
	} {
		r := e.do(owner, tc.query, tc.v)
		if len(r.Errors) != 1 || r.Errors[0].code() != "BAD_USER_INPUT" || r.Errors[0].Extensions["field"] != tc.field ||
			strings.Contains(r.Errors[0].Message, "internal") {
			t.Errorf("%s: %+v; want one BAD_USER_INPUT on %s", tc.name, r.Errors, tc.field)
		}
	}
}
