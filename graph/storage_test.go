package graph_test

import (
	"context"
	"fmt"
	"testing"
)

const (
	setStorageQuota     = `mutation($a: ID!, $b: Bytes) { setStorageQuota(input: {accountId: $a, bytes: $b}) { account { storage { used quota } } userErrors { field code message } } }`
	setUserStorageQuota = `mutation($u: ID!, $b: Bytes) { setUserStorageQuota(input: {userId: $u, bytes: $b}) { user { storage { used quota } } userErrors { field code message } } }`
)

type storageUsage struct {
	Used  int64
	Quota *int64
}

// Staff set the account's quota, owners and administrators cannot; an
// administrator cannot set an owner's own quota; usage is visible to those
// who may see it and null to others.
func TestStorageQuotasOverGraphQL(t *testing.T) {
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	adminID, admin := e.user(owner, "admin@acme.example", "ADMIN")
	plainID, plain := e.user(owner, "plain@acme.example", "USER")
	staff := e.staff("support@skiff.example")
	var me struct {
		Viewer struct{ User struct{ ID string } }
	}
	e.mustDo(owner, `{ viewer { ... on UserViewer { user { id } } } }`, nil, &me)
	ownerID := me.Viewer.User.ID

	// Only staff set the account's quota.
	for _, tok := range []string{owner, admin} {
		if r := e.do(tok, setStorageQuota, vars{"a": globalID("Account", accountID), "b": 1 << 30}); len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" {
			t.Fatalf("a user set the account's quota: %+v", r.Errors)
		}
	}
	var set struct {
		SetStorageQuota struct {
			Account    struct{ Storage *storageUsage }
			UserErrors []userError
		}
	}
	e.mustDo(staff, setStorageQuota, vars{"a": globalID("Account", accountID), "b": int64(5) << 40}, &set)
	if st := set.SetStorageQuota.Account.Storage; st == nil || st.Quota == nil || *st.Quota != 5<<40 || st.Used != 0 {
		t.Fatalf("staff set the quota: %+v", set)
	}
	e.mustDo(staff, setStorageQuota, vars{"a": globalID("Account", accountID), "b": -1}, &set)
	if ue := set.SetStorageQuota.UserErrors; len(ue) != 1 || ue[0].Code != "INVALID" || deref(ue[0].Field) != "bytes" {
		t.Fatalf("negative quota: %+v", set)
	}

	// Usage shows once files are recorded.
	m := e.svc.Storage.Meter(accountID)
	if err := m.Settle(context.Background(), localID(plainID), 0, 3000); err != nil {
		t.Fatal(err)
	}
	var q struct {
		Account *struct{ Storage *storageUsage }
	}
	e.mustDo(owner, `{ account { storage { used quota } } }`, nil, &q)
	if st := q.Account.Storage; st == nil || st.Used != 3000 || st.Quota == nil || *st.Quota != 5<<40 {
		t.Fatalf("owner sees %+v", q.Account)
	}
	// A plain user gets null with a FORBIDDEN error at the field, and the account.
	r := e.do(plain, `{ account { name storage { used quota } } }`, nil)
	if len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" || fmt.Sprint(r.Errors[0].Path) != "[account storage]" ||
		string(r.Data) != `{"account":{"name":"Acme","storage":null}}` {
		t.Fatalf("a plain user reading the account's storage: %s %+v", r.Data, r.Errors)
	}

	// Per-user quotas: owners and administrators, never an administrator on an owner.
	var setU struct {
		SetUserStorageQuota struct {
			User       *struct{ Storage *storageUsage }
			UserErrors []userError
		}
	}
	e.mustDo(admin, setUserStorageQuota, vars{"u": plainID, "b": 10000}, &setU)
	if u := setU.SetUserStorageQuota.User; u == nil || u.Storage == nil || u.Storage.Used != 3000 || u.Storage.Quota == nil || *u.Storage.Quota != 10000 {
		t.Fatalf("admin set a user's quota: %+v", setU)
	}
	if r := e.do(admin, setUserStorageQuota, vars{"u": ownerID, "b": 1}); len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" {
		t.Fatalf("an administrator set an owner's quota: %+v %s", r.Errors, r.Data)
	}
	if r := e.do(plain, setUserStorageQuota, vars{"u": plainID, "b": nil}); len(r.Errors) != 1 || r.Errors[0].code() != "FORBIDDEN" {
		t.Fatalf("a plain user set their own quota: %+v", r.Errors)
	}
	e.mustDo(owner, setUserStorageQuota, vars{"u": ownerID, "b": 1 << 20}, &setU)
	if u := setU.SetUserStorageQuota.User; u == nil || u.Storage == nil || *u.Storage.Quota != 1<<20 {
		t.Fatalf("owner set their own quota: %+v", setU)
	}

	// The user sees their own usage; another plain user does not.
	var u struct {
		Node *struct{ Storage *storageUsage }
	}
	e.mustDo(plain, `query($id: ID!) { node(id: $id) { ... on User { storage { used quota } } } }`, vars{"id": plainID}, &u)
	if u.Node == nil || u.Node.Storage == nil || u.Node.Storage.Used != 3000 {
		t.Fatalf("user's own storage: %+v", u.Node)
	}
	e.mustDo(plain, `query($id: ID!) { node(id: $id) { ... on User { storage { used quota } } } }`, vars{"id": adminID}, &u)
	if u.Node != nil && u.Node.Storage != nil {
		t.Fatalf("a plain user sees another's storage: %+v", u.Node.Storage)
	}
	e.mustDo(staff, `query($id: ID!) { account(id: $id) { storage { used } } }`, vars{"id": globalID("Account", accountID)}, &q)
	if q.Account == nil || q.Account.Storage == nil || q.Account.Storage.Used != 3000 {
		t.Fatalf("staff see %+v", q.Account)
	}
}
