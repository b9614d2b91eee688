package graph_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant/sftplogin"
)

const (
	provisionQuery = `mutation($a: ID!, $ip: String) { provisionDedicatedIp(input: {accountId: $a, address: $ip}) {
		dedicatedIp { address hostKeyFingerprints { algorithm fingerprint } } account { name dedicatedIp { address } }
		userErrors { field code message } } }`
	releaseQuery = `mutation($a: ID!) { releaseDedicatedIp(input: {accountId: $a}) {
		dedicatedIp { address releasedAt } account { dedicatedIp { address } } userErrors { field code message } } }`
	credentialsQuery = `query($id: ID!) { node(id: $id) { ... on User { sftp { credentials {
		login customLogin customLoginActive customLoginNote dedicatedHost dedicatedHostKeyFingerprints { fingerprint } } } } } }`
)

type dedicatedIPPayload struct {
	DedicatedIP *struct {
		Address             string
		ReleasedAt          *string
		HostKeyFingerprints []struct{ Algorithm, Fingerprint string }
	}
	Account *struct {
		Name        string
		DedicatedIP *struct{ Address string }
	}
	UserErrors []userError
}

type credentialsView struct {
	Node struct {
		Sftp struct {
			Credentials struct {
				Login, CustomLogin           string
				CustomLoginActive            bool
				CustomLoginNote              *string
				DedicatedHost                *string
				DedicatedHostKeyFingerprints []struct{ Fingerprint string }
			}
		}
	}
}

func (e *env) provision(staff, accountID, address string) dedicatedIPPayload {
	e.t.Helper()
	v := vars{"a": accountID}
	if address != "" {
		v["ip"] = address
	}
	var out struct{ ProvisionDedicatedIp dedicatedIPPayload }
	e.mustDo(staff, provisionQuery, v, &out)
	return out.ProvisionDedicatedIp
}

func (e *env) credentials(token, userID string) credentialsView {
	e.t.Helper()
	var out credentialsView
	e.mustDo(token, credentialsQuery, vars{"id": userID}, &out)
	return out
}

// sftpUser creates a user with SFTP on and the given custom login.
func (e *env) sftpUser(ownerToken, email, customLogin string) string {
	e.t.Helper()
	var out struct {
		CreateUser struct {
			User       *struct{ ID string }
			UserErrors []userError
		}
	}
	e.mustDo(ownerToken, `mutation($e: String!, $c: String) { createUser(input: {email: $e, name: "Someone", password: "correct horse battery",
		sftpEnabled: true, customSftpLogin: $c}) { user { id } userErrors { field code message } } }`, vars{"e": email, "c": customLogin}, &out)
	if out.CreateUser.User == nil {
		e.t.Fatalf("create %s: %+v", email, out.CreateUser.UserErrors)
	}
	return out.CreateUser.User.ID
}

func TestDedicatedIPsThroughGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{netip.MustParsePrefix("192.0.2.20/31")})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.DedicatedIPs.Config = sftplogin.DedicatedIPConfig{Pool: pool, Cooldown: 24 * time.Hour}
	acme, owner := e.account("Acme", "owner@acme.example")
	beta, betaOwner := e.account("Beta", "owner@beta.example")
	acmeID, betaID := globalID("Account", acme), globalID("Account", beta)
	staff := e.staff("support@skiff.example")
	for _, a := range []string{acmeID, betaID} {
		e.mustDo(staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 10}) { userErrors { message } } }`, vars{"a": a}, nil)
	}
	_, plain := e.user(owner, "user@acme.example", "USER")

	// Staff only, and IDs of another type are not found.
	e.mustFail(owner, provisionQuery, vars{"a": acmeID}, "FORBIDDEN")
	e.mustFail("", provisionQuery, vars{"a": acmeID}, "UNAUTHENTICATED")
	e.mustFail(owner, releaseQuery, vars{"a": acmeID}, "FORBIDDEN")
	e.mustFail(owner, `{ dedicatedIpPool { edges { node { address } } } }`, nil, "FORBIDDEN")
	e.mustFail(staff, provisionQuery, vars{"a": globalID("User", acme)}, "NOT_FOUND")
	e.mustFail(staff, provisionQuery, vars{"a": globalID("Account", "5f0e7a3c-0000-4000-8000-000000000000")}, "NOT_FOUND")

	// Support provisions Acme; its admins see the address and the keys.
	p := e.provision(staff, acmeID, "192.0.2.20")
	if p.DedicatedIP == nil || p.DedicatedIP.Address != "192.0.2.20" || len(p.DedicatedIP.HostKeyFingerprints) != 3 ||
		p.Account == nil || p.Account.DedicatedIP == nil || p.Account.DedicatedIP.Address != "192.0.2.20" {
		t.Fatalf("provision: %+v", p)
	}
	var seen struct {
		Account struct {
			DedicatedIP *struct {
				Address             string
				HostKeyFingerprints []struct{ Fingerprint string }
			}
		}
	}
	e.mustDo(owner, `{ account { dedicatedIp { address provisionedAt hostKeyFingerprints { fingerprint } } } }`, nil, &seen)
	if ip := seen.Account.DedicatedIP; ip == nil || ip.Address != "192.0.2.20" || ip.HostKeyFingerprints[0].Fingerprint != p.DedicatedIP.HostKeyFingerprints[0].Fingerprint {
		t.Errorf("the owner sees %+v", seen.Account.DedicatedIP)
	}
	e.mustFail(plain, `{ account { dedicatedIp { address } } }`, nil, "FORBIDDEN")
	if q := e.provision(staff, betaID, "192.0.2.20"); len(q.UserErrors) != 1 || q.UserErrors[0].Code != "CONFLICT" || *q.UserErrors[0].Field != "address" {
		t.Errorf("Acme's address for Beta: %+v", q)
	}

	// The owner gives a user a custom login in createUser.
	uma := e.sftpUser(owner, "uma@acme.example", "backup")
	c := e.credentials(owner, uma).Node.Sftp.Credentials
	if c.CustomLogin != "backup" || !c.CustomLoginActive || c.CustomLoginNote != nil || c.DedicatedHost == nil ||
		*c.DedicatedHost != "192.0.2.20" || len(c.DedicatedHostKeyFingerprints) != 3 ||
		c.DedicatedHostKeyFingerprints[0].Fingerprint != p.DedicatedIP.HostKeyFingerprints[0].Fingerprint {
		t.Errorf("credentials: %+v", c)
	}
	// Beta may use the same login once it has its own dedicated IP.
	if q := e.provision(staff, betaID, ""); q.DedicatedIP == nil || q.DedicatedIP.Address != "192.0.2.21" {
		t.Fatalf("Beta's provisioning: %+v", q)
	}
	e.sftpUser(betaOwner, "ben@beta.example", "Backup")

	// setCustomSftpLogin: validation errors, and another account's user is not found.
	setQuery := `mutation($u: ID!, $l: String) { setCustomSftpLogin(input: {userId: $u, login: $l}) {
		user { sftp { credentials { customLogin } } } userErrors { field code message } } }`
	var set struct {
		SetCustomSftpLogin struct {
			User *struct {
				Sftp struct{ Credentials struct{ CustomLogin *string } }
			}
			UserErrors []userError
		}
	}
	e.mustDo(owner, setQuery, vars{"u": uma, "l": "k7m2-p9xd"}, &set)
	if ue := set.SetCustomSftpLogin.UserErrors; len(ue) != 1 || ue[0].Code != "INVALID" || *ue[0].Field != "login" {
		t.Errorf("an ID-shaped login: %+v", set.SetCustomSftpLogin)
	}
	e.mustFail(betaOwner, setQuery, vars{"u": uma, "l": "stolen"}, "NOT_FOUND")
	e.mustFail(plain, setQuery, vars{"u": uma, "l": "mine"}, "FORBIDDEN")
	e.mustDo(owner, setQuery, vars{"u": uma, "l": "uma.files"}, &set)
	if u := set.SetCustomSftpLogin.User; u == nil || u.Sftp.Credentials.CustomLogin == nil || *u.Sftp.Credentials.CustomLogin != "uma.files" {
		t.Errorf("setCustomSftpLogin: %+v", set.SetCustomSftpLogin)
	}

	// The pool, as support sees it.
	var list struct {
		DedicatedIpPool struct {
			Edges []struct {
				Node struct {
					Address, State string
					Account        *struct{ Name string }
					AvailableAt    *string
					InPool         bool
				}
			}
		}
	}
	poolQuery := `{ dedicatedIpPool { edges { node { address state account { name } availableAt inPool } } } }`
	e.mustDo(staff, poolQuery, nil, &list)
	if n := list.DedicatedIpPool.Edges; len(n) != 2 || n[0].Node.State != "ASSIGNED" || n[0].Node.Account.Name != "Acme" ||
		n[1].Node.Account.Name != "Beta" || !n[1].Node.InPool {
		t.Errorf("pool: %+v", n)
	}

	// Released: the custom login is kept, inactive, with a note.
	var rel struct{ ReleaseDedicatedIp dedicatedIPPayload }
	e.mustDo(staff, releaseQuery, vars{"a": acmeID}, &rel)
	if r := rel.ReleaseDedicatedIp; r.DedicatedIP == nil || r.DedicatedIP.ReleasedAt == nil || r.Account.DedicatedIP != nil {
		t.Errorf("release: %+v", r)
	}
	c = e.credentials(owner, uma).Node.Sftp.Credentials
	if c.CustomLogin != "uma.files" || c.CustomLoginActive || c.CustomLoginNote == nil || c.DedicatedHost != nil {
		t.Errorf("credentials after the release: %+v", c)
	}
	e.mustDo(staff, poolQuery, nil, &list)
	if n := list.DedicatedIpPool.Edges[0].Node; n.State != "COOLING_DOWN" || n.Account.Name != "Acme" || n.AvailableAt == nil {
		t.Errorf("released address in the pool: %+v", n)
	}
	var again struct{ ReleaseDedicatedIp dedicatedIPPayload }
	e.mustDo(staff, releaseQuery, vars{"a": acmeID}, &again)
	if ue := again.ReleaseDedicatedIp.UserErrors; len(ue) != 1 || ue[0].Code != "CONFLICT" {
		t.Errorf("releasing twice: %+v", again.ReleaseDedicatedIp)
	}

	// Provisioned again: the same address comes back, and the login works.
	if q := e.provision(staff, acmeID, ""); q.DedicatedIP == nil || q.DedicatedIP.Address != "192.0.2.20" ||
		q.DedicatedIP.HostKeyFingerprints[0] != p.DedicatedIP.HostKeyFingerprints[0] {
		t.Errorf("provisioning again: %+v", q)
	}
	if c := e.credentials(owner, uma).Node.Sftp.Credentials; !c.CustomLoginActive {
		t.Errorf("credentials after provisioning again: %+v", c)
	}
}
