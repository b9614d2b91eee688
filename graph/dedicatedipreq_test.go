package graph_test

import (
	"net/netip"
	"testing"

	"github.com/skiffhq/skiff/tenant/sftplogin"
)

const (
	requestIPQuery = `mutation($m: String) { requestDedicatedIp(input: {message: $m}) {
		request { id state message requestedByEmail account { name } } userErrors { field code message } } }`
	declineIPQuery = `mutation($id: ID!, $r: String!) { declineDedicatedIpRequest(input: {id: $id, reason: $r}) {
		request { id state handledAt declineReason } userErrors { field code message } } }`
	ipRequestsQuery = `query($open: Boolean) { dedicatedIpRequests(onlyOpen: $open) { edges { node {
		id state message requestedByName requestedByEmail createdAt handledAt address declineReason account { name } } } } }`
)

type ipRequestPayload struct {
	Request *struct {
		ID, State, Message, RequestedByEmail string
		HandledAt, DeclineReason             *string
		Account                              struct{ Name string }
	}
	UserErrors []userError
}

type ipRequestNode struct {
	ID, State, Message, RequestedByName, RequestedByEmail, CreatedAt string
	HandledAt, Address, DeclineReason                                *string
	Account                                                          struct{ Name string }
}

func (e *env) requestIP(token, message string) ipRequestPayload {
	e.t.Helper()
	var out struct{ RequestDedicatedIp ipRequestPayload }
	e.mustDo(token, requestIPQuery, vars{"m": message}, &out)
	return out.RequestDedicatedIp
}

func (e *env) ipRequests(staff string, onlyOpen bool) []ipRequestNode {
	e.t.Helper()
	var out struct {
		DedicatedIpRequests struct {
			Edges []struct{ Node ipRequestNode }
		}
	}
	e.mustDo(staff, ipRequestsQuery, vars{"open": onlyOpen}, &out)
	var nodes []ipRequestNode
	for _, ed := range out.DedicatedIpRequests.Edges {
		nodes = append(nodes, ed.Node)
	}
	return nodes
}

// notificationsTo counts the account's emails of kind to recipient, as an
// owner sees them.
func (e *env) notificationsTo(owner, kind, recipient string) int {
	e.t.Helper()
	var notes struct {
		Account struct {
			Notifications struct {
				Edges []struct {
					Node struct{ Kind, Recipient string }
				}
			}
		}
	}
	e.mustDo(owner, `{ account { notifications(first: 200) { edges { node { kind: kindName recipient } } } } }`, nil, &notes)
	n := 0
	for _, ed := range notes.Account.Notifications.Edges {
		if ed.Node.Kind == kind && ed.Node.Recipient == recipient {
			n++
		}
	}
	return n
}

func TestDedicatedIPRequestsThroughGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{netip.MustParsePrefix("192.0.2.40/32")})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.DedicatedIPs.Config = sftplogin.DedicatedIPConfig{Pool: pool}
	acme, owner := e.account("Acme", "owner@acme.example")
	_, betaOwner := e.account("Beta", "owner@beta.example")
	staff := e.staff("support@skiff.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")

	// Owners only; the queue is support's.
	e.mustFail(admin, `mutation { requestDedicatedIp(input: {}) { request { id } } }`, nil, "FORBIDDEN")
	e.mustFail(owner, `{ dedicatedIpRequests { edges { node { id } } } }`, nil, "FORBIDDEN")

	// Request, a refused duplicate, the queue.
	req := e.requestIP(owner, "For the bank's allow-list.")
	if req.Request == nil || req.Request.State != "OPEN" || req.Request.Account.Name != "Acme" ||
		req.Request.RequestedByEmail != "owner@acme.example" {
		t.Fatalf("request: %+v", req)
	}
	if dup := e.requestIP(owner, "again"); dup.Request != nil || len(dup.UserErrors) != 1 || dup.UserErrors[0].Code != "CONFLICT" {
		t.Fatalf("second open request: %+v", dup)
	}
	q := e.ipRequests(staff, true)
	if len(q) != 1 || q[0].ID != req.Request.ID || q[0].Message != "For the bank's allow-list." || q[0].Account.Name != "Acme" ||
		q[0].RequestedByEmail != "owner@acme.example" || q[0].CreatedAt == "" || q[0].HandledAt != nil {
		t.Fatalf("queue: %+v", q)
	}

	// Another account's owner cannot decline it, nor see it through node(id:).
	e.mustFail(betaOwner, declineIPQuery, vars{"id": req.Request.ID, "r": "no"}, "FORBIDDEN")
	var node struct{ Node *struct{ ID string } }
	e.mustDo(betaOwner, `query($id: ID!) { node(id: $id) { id } }`, vars{"id": req.Request.ID}, &node)
	if node.Node != nil {
		t.Fatal("another account's owner sees the request")
	}
	// An ID of another type is not found.
	e.mustFail(staff, declineIPQuery, vars{"id": globalID("Account", acme), "r": "no"}, "NOT_FOUND")

	// Provisioning closes it and emails the owner.
	if p := e.provision(staff, globalID("Account", acme), ""); p.DedicatedIP == nil {
		t.Fatalf("provision: %+v", p)
	}
	all := e.ipRequests(staff, false)
	if len(all) != 1 || all[0].State != "PROVISIONED" || all[0].Address == nil || *all[0].Address != "192.0.2.40" || all[0].HandledAt == nil {
		t.Fatalf("after provisioning: %+v", all)
	}
	if len(e.ipRequests(staff, true)) != 0 {
		t.Fatal("the provisioned request is still open")
	}
	if n := e.notificationsTo(owner, "dedicated_ip_provisioned", "owner@acme.example"); n != 1 {
		t.Fatalf("%d provisioned emails", n)
	}

	// Decline: the reason is kept and emailed.
	breq := e.requestIP(betaOwner, "")
	if breq.Request == nil {
		t.Fatalf("Beta's request: %+v", breq)
	}
	if d := e.declineIP(staff, breq.Request.ID, " "); d.Request != nil || len(d.UserErrors) != 1 || d.UserErrors[0].Code != "INVALID" {
		t.Fatalf("decline without a reason: %+v", d)
	}
	d := e.declineIP(staff, breq.Request.ID, "The pool is full until May.")
	if d.Request == nil || d.Request.State != "DECLINED" || d.Request.DeclineReason == nil ||
		*d.Request.DeclineReason != "The pool is full until May." || d.Request.HandledAt == nil {
		t.Fatalf("decline: %+v", d)
	}
	if again := e.declineIP(staff, breq.Request.ID, "twice"); again.Request != nil || len(again.UserErrors) != 1 || again.UserErrors[0].Code != "CONFLICT" {
		t.Fatalf("declining twice: %+v", again)
	}
	if n := e.notificationsTo(betaOwner, "dedicated_ip_declined", "owner@beta.example"); n != 1 {
		t.Fatalf("%d declined emails", n)
	}

	// Both sides are in the account's audit trail.
	var audit struct {
		Account struct {
			AuditEvents struct {
				Edges []struct{ Node struct{ Kind string } }
			}
		}
	}
	e.mustDo(betaOwner, `{ account { auditEvents(first: 50) { edges { node { kind: kindName } } } } }`, nil, &audit)
	seen := map[string]bool{}
	for _, ed := range audit.Account.AuditEvents.Edges {
		seen[ed.Node.Kind] = true
	}
	if !seen["dedicated_ip.requested"] || !seen["dedicated_ip.request_declined"] {
		t.Fatalf("audit: %v", seen)
	}
}

func (e *env) declineIP(staff, id, reason string) ipRequestPayload {
	e.t.Helper()
	var out struct{ DeclineDedicatedIpRequest ipRequestPayload }
	e.mustDo(staff, declineIPQuery, vars{"id": id, "r": reason}, &out)
	return out.DeclineDedicatedIpRequest
}
