package graph_test

import (
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
)

// subEnded matches the sub's end by a graphql-transport-ws "error" message
// carrying code.
func subEnded(sub, code string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["sub"] == sub && m["ev"] == "error" && strings.Contains(string(mustJSON(m)), code)
	}
}

// Open subscriptions end, each with a graphql-transport-ws error, when
// their token stops working — logout, revokeApiSession, a reused refresh
// token, an access token's expiry — or when the viewer loses the role that
// let them see what they watch; a subscription opened on a connection whose
// token has ended since is refused; the others go on.
func TestSubscriptionsEndWithTheirLogin(t *testing.T) {
	url := pgtest.NewDB(t)
	db := openDB(t, url)
	nodeA, nodeB := newAPINode(t, url, db, 4, 0), newAPINode(t, url, db, 4, 0)
	_, owner := nodeA.account("Acme", "owner@acme.example")
	adminID, admin := nodeA.user(owner, "admin@acme.example", "ADMIN")
	_, user := nodeA.user(owner, "user@acme.example", "USER")
	js := startJSClients(t, "ws"+strings.TrimPrefix(nodeB.srv.URL, "http")+"/graphql")

	subscribe := func(sub, token, query string) {
		js.send(map[string]any{"op": "connect", "client": sub, "token": token, "via": "init"})
		js.send(map[string]any{"op": "subscribe", "client": sub, "sub": sub, "query": query})
	}
	loggedOut := nodeA.login("owner@acme.example", testPassword)
	revoked := nodeA.loginAs("owner@acme.example", "BEARER", "revoke-me")
	reused := nodeA.loginAs("owner@acme.example", "ACCESS_AND_REFRESH", "reuse-me")
	nodeA.svc.People.AccessTokenTTL = 3 * time.Second
	expiring := nodeA.loginAs("owner@acme.example", "ACCESS_AND_REFRESH", "expire-me")
	stale := nodeA.login("owner@acme.example", testPassword)

	subscribe("alive", owner, sessionEventsSubscription)
	subscribe("ownUser", user, activitySubscription)
	subscribe("loggedOut", loggedOut, sessionEventsSubscription)
	subscribe("revoked", *revoked.Token, activitySubscription)
	subscribe("reused", *reused.Token, sessionEventsSubscription)
	subscribe("expiring", *expiring.Token, activitySubscription)
	subscribe("demotedActivity", admin, activitySubscription)
	subscribe("demotedSessions", admin, sessionEventsSubscription)
	js.send(map[string]any{"op": "connect", "client": "stale", "token": stale, "via": "init"})
	js.send(map[string]any{"op": "subscribe", "client": "stale", "sub": "first", "query": sessionEventsSubscription})
	for _, c := range []string{"alive", "ownUser", "loggedOut", "revoked", "reused", "expiring", "demotedActivity", "demotedSessions", "stale"} {
		js.wait(c+" to connect", 10*time.Second, clientEv(c, "connected"))
	}
	time.Sleep(4 * subscriptionRecheck) // several rechecks: nothing ends yet
	for _, sub := range []string{"alive", "ownUser", "loggedOut", "revoked", "reused", "demotedActivity", "demotedSessions", "first"} {
		if l := js.find(func(m map[string]any) bool { return m["sub"] == sub && m["ev"] != nil && m["ack"] == nil }); l != nil {
			t.Fatalf("%s ended before its login did: %v", sub, l)
		}
	}

	// logout
	nodeA.mustDo(loggedOut, `mutation { logout { ok } }`, nil, nil)
	js.wait("the logged-out token's subscription to end", 30*time.Second, subEnded("loggedOut", "UNAUTHENTICATED"))

	// revokeApiSession, by the owner's other session
	var mine string
	for _, s := range nodeA.apiSessions(owner) {
		if s.UserAgent == "revoke-me" {
			mine = s.ID
		}
	}
	nodeA.mustDo(owner, `mutation($id: ID!) { revokeApiSession(input: {id: $id}) { apiSession { id } } }`, map[string]any{"id": mine}, nil)
	js.wait("the revoked session's subscription to end", 30*time.Second, subEnded("revoked", "UNAUTHENTICATED"))

	// a refresh token used twice revokes its session
	if _, ues := nodeA.refresh(*reused.RefreshToken); len(ues) > 0 {
		t.Fatalf("refresh: %+v", ues)
	}
	if _, ues := nodeA.refresh(*reused.RefreshToken); len(ues) == 0 {
		t.Fatal("a reused refresh token was accepted")
	}
	js.wait("the reused session's subscription to end", 30*time.Second, subEnded("reused", "UNAUTHENTICATED"))

	// the access token expires
	js.wait("the expired access token's subscription to end", 10*time.Second, subEnded("expiring", "UNAUTHENTICATED"))
	if now := time.Now(); now.Before(*expiring.ExpiresAt) {
		t.Errorf("ended at %v, before the access token expired at %v", now, *expiring.ExpiresAt)
	}

	// the administrator becomes a user: what they watched is no longer theirs
	nodeA.mustDo(owner, `mutation($id: ID!) { updateUser(input: {id: $id, role: USER}) { user { role } } }`, map[string]any{"id": adminID}, nil)
	js.wait("the demoted administrator's activity subscription to end", 30*time.Second, subEnded("demotedActivity", "FORBIDDEN"))
	js.wait("the demoted administrator's sessions subscription to end", 30*time.Second, subEnded("demotedSessions", "FORBIDDEN"))

	// a new subscription on a connection whose token has ended since
	nodeA.mustDo(stale, `mutation { logout { ok } }`, nil, nil)
	js.send(map[string]any{"op": "subscribe", "client": "stale", "sub": "second", "query": activitySubscription})
	js.wait("a subscription with a logged-out connection's token to be refused", 30*time.Second, subRefused("second", "UNAUTHENTICATED"))

	// the others go on
	time.Sleep(2 * subscriptionRecheck)
	for _, sub := range []string{"alive", "ownUser"} {
		if l := js.find(func(m map[string]any) bool { return m["sub"] == sub && m["ev"] != nil && m["ack"] == nil }); l != nil {
			t.Errorf("%s ended: %v", sub, l)
		}
	}
}
