package graph_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/tenant"
)

func newProxiedEnv(t *testing.T) *env {
	return newEnvWith(t, func(c *graph.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
}

const (
	setAccountAllowlist = `mutation($c: [String!]!) { setAccountIpAllowlist(input: {cidrs: $c}) { account { ipAllowlist } userErrors { field code message } } }`
	setUserAllowlist    = `mutation($u: ID!, $c: [String!]!) { setUserIpAllowlist(input: {userId: $u, cidrs: $c}) { user { ipAllowlist } userErrors { field code message } } }`
	viewerQuery         = `{ viewer { __typename } }`
)

type allowlistPayload struct {
	Account    *struct{ IPAllowlist []string }
	User       *struct{ IPAllowlist []string }
	UserErrors []userError
}

func decodePayload(t *testing.T, r response, field string) allowlistPayload {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	var out map[string]allowlistPayload
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatal(err)
	}
	return out[field]
}

// refused asserts that a request was refused for its address, as the issue asks.
func refused(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusUnauthorized || len(r.Errors) != 1 || r.Errors[0].code() != "UNAUTHENTICATED" ||
		r.Errors[0].Message != "your address is not allowed for this account" {
		t.Fatalf("want the allowlist refusal, got status %d %+v", r.status, r.Errors)
	}
}

func TestIPAllowlistsOverGraphQL(t *testing.T) {
	e := newProxiedEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	adminID, admin := e.user(owner, "admin@acme.example", "ADMIN")
	_, plain := e.user(owner, "plain@acme.example", "USER")
	var me struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(owner, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &me)
	ownerID := me.Viewer.User.ID

	// Bad entries, too many entries, and a list that locks the owner out.
	p := decodePayload(t, e.doFrom("198.51.100.1", owner, setAccountAllowlist, vars{"c": []string{"10.0.0.0/8", "not-a-cidr"}}), "setAccountIpAllowlist")
	if len(p.UserErrors) != 1 || p.UserErrors[0].Code != "INVALID" || deref(p.UserErrors[0].Field) != "cidrs.1" {
		t.Fatalf("bad CIDR: %+v", p)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.%d.0/24", i)
	}
	p = decodePayload(t, e.doFrom("198.51.100.1", owner, setAccountAllowlist, vars{"c": many}), "setAccountIpAllowlist")
	if len(p.UserErrors) != 1 || p.UserErrors[0].Code != "LIMIT" {
		t.Fatalf("101 entries: %+v", p)
	}
	p = decodePayload(t, e.doFrom("198.51.100.1", owner, setAccountAllowlist, vars{"c": []string{"203.0.113.0/24"}}), "setAccountIpAllowlist")
	if len(p.UserErrors) != 1 || p.UserErrors[0].Code != "INVALID" || p.Account != nil {
		t.Fatalf("self-lockout not refused: %+v", p)
	}
	// Only owners set the account's list.
	if r := e.doFrom("203.0.113.5", admin, setAccountAllowlist, vars{"c": []string{"203.0.113.0/24"}}); len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" {
		t.Fatalf("admin set the account's list: %+v %s", r.Errors, r.Data)
	}
	// Nothing was saved: everyone still gets in from anywhere.
	if r := e.doFrom("198.51.100.1", plain, viewerQuery, nil); len(r.Errors) != 0 {
		t.Fatalf("refused with no list: %+v", r.Errors)
	}

	// The owner, at 203.0.113.5, restricts the account to that network and an IPv6 one.
	p = decodePayload(t, e.doFrom("203.0.113.5", owner, setAccountAllowlist,
		vars{"c": []string{"203.0.113.77/24", "2001:db8::/32", "203.0.113.0/24"}}), "setAccountIpAllowlist")
	if len(p.UserErrors) != 0 || !slices.Equal(p.Account.IPAllowlist, []string{"203.0.113.0/24", "2001:db8::/32"}) {
		t.Fatalf("set: %+v", p)
	}
	for _, who := range []string{owner, admin, plain} {
		refused(t, e.doFrom("198.51.100.1", who, viewerQuery, nil))
		refused(t, e.do(who, viewerQuery, nil)) // the proxy's own address is not the client's
		if r := e.doFrom("203.0.113.200", who, viewerQuery, nil); len(r.Errors) != 0 {
			t.Fatalf("refused inside the list: %+v", r.Errors)
		}
		if r := e.doFrom("2001:db8:1::9", who, viewerQuery, nil); len(r.Errors) != 0 {
			t.Fatalf("refused inside the IPv6 list: %+v", r.Errors)
		}
	}
	// Logging in from outside says why, once the password is right.
	r := e.doFrom("198.51.100.1", "", `mutation { login(input: {email: "plain@acme.example", password: "`+testPassword+`"}) { token userErrors { code message } } }`, nil)
	if string(r.Data) == "" || !bytes.Contains(r.Data, []byte("your address is not allowed for this account")) || bytes.Contains(r.Data, []byte(`"token":"`)) {
		t.Fatalf("login from outside: %s %+v", r.Data, r.Errors)
	}
	r = e.doFrom("203.0.113.9", "", `mutation { login(input: {email: "plain@acme.example", password: "`+testPassword+`"}) { token } }`, nil)
	if !bytes.Contains(r.Data, []byte(`"token":"skf_`)) {
		t.Fatalf("login from inside: %s %+v", r.Data, r.Errors)
	}
	// Plain users do not see the list; the owner does.
	var acc struct {
		Account struct{ IPAllowlist []string }
	}
	if err := json.Unmarshal(e.doFrom("203.0.113.9", plain, `{ account { ipAllowlist } }`, nil).Data, &acc); err != nil || acc.Account.IPAllowlist != nil {
		t.Fatalf("plain user sees the list: %+v %v", acc, err)
	}

	// A user's own list applies on top; an administrator cannot touch an owner's.
	p = decodePayload(t, e.doFrom("203.0.113.5", admin, setUserAllowlist, vars{"u": adminID, "c": []string{"203.0.113.0/25"}}), "setUserIpAllowlist")
	if len(p.UserErrors) != 0 || !slices.Equal(p.User.IPAllowlist, []string{"203.0.113.0/25"}) {
		t.Fatalf("admin's own list: %+v", p)
	}
	refused(t, e.doFrom("203.0.113.200", admin, viewerQuery, nil))
	if r := e.doFrom("203.0.113.100", admin, viewerQuery, nil); len(r.Errors) != 0 {
		t.Fatalf("admin refused inside both lists: %+v", r.Errors)
	}
	p = decodePayload(t, e.doFrom("203.0.113.5", admin, setUserAllowlist, vars{"u": adminID, "c": []string{"203.0.113.128/25"}}), "setUserIpAllowlist")
	if len(p.UserErrors) != 1 || p.UserErrors[0].Code != "INVALID" {
		t.Fatalf("admin locked themselves out: %+v", p)
	}
	if r := e.doFrom("203.0.113.5", admin, setUserAllowlist, vars{"u": ownerID, "c": []string{"203.0.113.128/25"}}); len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" {
		t.Fatalf("admin set the owner's list: %+v %s", r.Errors, r.Data)
	}

	// Support staff clear the account's list; the owner gets in from anywhere again.
	staff := e.staff("support@skiff.example")
	if r := e.doFrom("203.0.113.5", owner, `mutation($a: ID!) { clearAccountIpAllowlist(input: {accountId: $a}) { account { id } } }`,
		vars{"a": globalID("Account", accountID)}); len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" {
		t.Fatalf("owner used the staff clear: %+v", r.Errors)
	}
	p = decodePayload(t, e.doFrom("192.0.2.1", staff, `mutation($a: ID!) { clearAccountIpAllowlist(input: {accountId: $a}) { account { ipAllowlist } userErrors { field code message } } }`,
		vars{"a": globalID("Account", accountID)}), "clearAccountIpAllowlist")
	if len(p.UserErrors) != 0 || p.Account == nil || len(p.Account.IPAllowlist) != 0 || p.Account.IPAllowlist == nil {
		t.Fatalf("staff clear: %+v", p)
	}
	if r := e.doFrom("198.51.100.1", owner, viewerQuery, nil); len(r.Errors) != 0 {
		t.Fatalf("owner refused after the clear: %+v", r.Errors)
	}

	// Each change is in the audit trail.
	var kinds []string
	if err := e.svc.DB.CrossTenant(context.Background(), tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tx.Select(&kinds, `SELECT kind FROM audit_events WHERE account_id = $1 AND kind LIKE '%ip_allowlist%' ORDER BY at`, accountID)
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kinds, []string{"account.ip_allowlist_changed", "user.ip_allowlist_changed", "account.ip_allowlist_changed"}) {
		t.Fatalf("audit: %v", kinds)
	}
}

// A client that is not a trusted proxy cannot name another address.
func TestForwardedForIsIgnoredFromUntrustedPeers(t *testing.T) {
	e := newEnvWith(t, func(c *graph.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	accountID, owner := e.account("Acme", "owner@acme.example")
	var me struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(owner, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &me)
	ctx := tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindUser, ID: localID(me.Viewer.User.ID),
		AccountID: accountID, Role: tenant.RoleOwner, Addr: netip.MustParseAddr("203.0.113.5")})
	if _, err := e.svc.People.SetAccountIPAllowlist(ctx, []string{"203.0.113.0/24"}); err != nil {
		t.Fatal(err)
	}
	refused(t, e.doFrom("203.0.113.5", owner, viewerQuery, nil))
	refused(t, e.do(owner, viewerQuery, nil))
}

// localID is the inverse of globalID.
func localID(gid string) string {
	b, _ := base64.RawURLEncoding.DecodeString(gid)
	_, id, _ := strings.Cut(string(b), ":")
	return id
}

// Every bad entry of an allowlist comes back at once, on cidrs.<index>, for
// the account's list and a user's.
func TestIPAllowlistReportsEveryBadEntry(t *testing.T) {
	e := newProxiedEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	userID, _ := e.user(owner, "plain@acme.example", "USER")
	bad := []string{"10.0.0.0/8", "not-a-cidr", "192.0.2.1", "300.1.2.3/24", "fe80::1%eth0"}
	check := func(p allowlistPayload, what string) {
		t.Helper()
		var got []string
		for _, ue := range p.UserErrors {
			if ue.Code != "INVALID" || !strings.Contains(ue.Message, "is not an IPv4 or IPv6 address or CIDR") {
				t.Fatalf("%s: %+v", what, ue)
			}
			got = append(got, deref(ue.Field))
		}
		if p.Account != nil || p.User != nil || strings.Join(got, ",") != "cidrs.1,cidrs.3,cidrs.4" {
			t.Fatalf("%s: want errors on cidrs.1, cidrs.3 and cidrs.4, got %+v", what, p)
		}
	}
	check(decodePayload(t, e.doFrom("10.1.2.3", owner, setAccountAllowlist, vars{"c": bad}), "setAccountIpAllowlist"), "account")
	check(decodePayload(t, e.doFrom("10.1.2.3", owner, setUserAllowlist, vars{"u": userID, "c": bad}), "setUserIpAllowlist"), "user")
}
