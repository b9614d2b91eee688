package graph_test

import (
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/graph"
)

// Repeated fields are refused before validation, whose overlapping-fields
// rule is quadratic in them: the 176 KB and 460 KB anonymous
// requests cost 23 s and 90 s of CPU before.
func TestRepeatedFieldsRefusedBeforeValidation(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.MaxBodyBytes = 1 << 20 })
	for _, n := range []int{8000, 20000} {
		q := "{ " + strings.Repeat("viewer { __typename } ", n) + "}"
		start := time.Now()
		r := e.do("", q, nil)
		took := time.Since(start)
		t.Logf("%d repeated fields (%d bytes) refused in %v (round trip)", n, len(q), took)
		if len(r.Errors) != 1 || r.Errors[0].code() != "QUERY_TOO_LARGE" {
			t.Fatalf("%d repeated fields (%d bytes): want QUERY_TOO_LARGE, got %+v", n, len(q), r.Errors)
		}
		if took > 2*time.Second { // milliseconds here; tens of seconds before
			t.Fatalf("%d repeated fields took %v to refuse", n, took)
		}
	}
	// Under the token limit, too many selections in one set.
	q := "{ " + strings.Repeat("viewer { __typename } ", 101) + "}"
	if r := e.do("", q, nil); len(r.Errors) != 1 || r.Errors[0].code() != "QUERY_TOO_LARGE" ||
		!strings.Contains(r.Errors[0].Message, "101 selections") {
		t.Fatalf("101 selections: %+v", r.Errors)
	}
	// Fragments expanded: 10 levels of 10 spreads would be 10^10 fields.
	var b strings.Builder
	b.WriteString("{ viewer { ...F0 } }\n")
	for i := range 10 {
		b.WriteString("fragment F" + string(rune('0'+i)) + " on Viewer { ")
		for j := range 10 {
			_ = j
			if i == 9 {
				b.WriteString("__typename ")
			} else {
				b.WriteString("...F" + string(rune('1'+i)) + " ")
			}
		}
		b.WriteString("}\n")
	}
	start := time.Now()
	if r := e.do("", b.String(), nil); len(r.Errors) != 1 || r.Errors[0].code() != "QUERY_TOO_LARGE" {
		t.Fatalf("fragment bomb: %+v", r.Errors)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("fragment bomb took %v to refuse", took)
	}
}

// A paged field's selection counts once per item of `first`: the 40
// aliases of users(first: 200) { group { members(first: 200) } } took 12.7 s
// and 22 MB before, and are now refused before any resolver runs.
func TestComplexityMultipliesByFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	var b strings.Builder
	b.WriteString("{ ")
	for i := range 40 {
		b.WriteString("a" + strings.Repeat("x", i) + `: account { users(first: 200) { edges { node { id email
			group { name members(first: 200) { edges { node { id email sshKeys { fingerprint } } } } } } } } } `)
	}
	b.WriteString("}")
	start := time.Now()
	err := e.mustFail(owner, b.String(), nil, "COMPLEXITY_LIMIT_EXCEEDED")
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("refusal took %v", took)
	}
	if !strings.Contains(err.Message, "first") {
		t.Fatalf("message does not explain the cost: %q", err.Message)
	}
	// One such nested page alone is over the default budget too (200×200 members).
	e.mustFail(owner, `query($n: Int) { account { users(first: $n) { edges { node { group { members(first: 200) {
		edges { node { id } } } } } } } } }`, vars{"n": 200}, "COMPLEXITY_LIMIT_EXCEEDED")
	// A full page of users with their details is within it.
	e.mustDo(owner, `{ account { users(first: 200) { edges { node { id name email role group { name jailed }
		sftp { enabled credentials { login host port hostKeyFingerprints { algorithm fingerprint } } }
		sshKeys { fingerprint lastUsedAt } } } } } }`, nil, nil)
}

// The README tour's queries stay well within the limits.
func TestTourQueriesWithinLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Demo", "owner@demo.example")
	for _, q := range []string{
		`{ viewer { ... on UserViewer { user { id name role } account { name sftpModule { status trialEndsAt } sftpLicences { purchased used available } } } } }`,
		`{ account { groups { edges { node { id name builtin jailed } } } } }`,
		`{ viewer { ... on UserViewer { user { group { name jailed } projectsSharedWithMe { edges { preset rights node { name } } } } } } }`,
		`mutation { createUser(input: {email: "alice@demo.example", name: "Alice", password: "a long password here", sftpEnabled: true}) {
			user { id sftp { enabled credentials { host port login hostKeyFingerprints { algorithm fingerprint } } } }
			userErrors { field code message } } }`,
	} {
		e.mustDo(owner, q, nil, nil)
	}
}

func TestResponseSizeBounded(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.MaxResponseBytes = 300 })
	_, owner := e.account("Acme", "owner@acme.example")
	e.mustDo(owner, `{ viewer { __typename } }`, nil, nil)
	e.mustFail(owner, `{ account { users { edges { node { id name email role group { name } } } } }
		viewer { ... on UserViewer { user { id name email role } account { name } } } }`, nil, "RESPONSE_TOO_LARGE")
}
