package graph_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/activity"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

const activitySubscription = `subscription($a: ID, $f: SftpActivityFilter) { sftpActivity(accountId: $a, filter: $f) {
	action outcome path login node user { email } } }`

// activityEvent matches the sub's event about path.
func activityEvent(sub, path string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["sub"] == sub && m["ev"] == "next" && digPath(m, "data", "data", "sftpActivity", "path") == path
	}
}

// subRefused matches the sub's refusal (an error, or a result with errors)
// carrying code.
func subRefused(sub, code string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["sub"] == sub && (m["ev"] == "error" || m["ev"] == "next") && strings.Contains(string(mustJSON(m)), code)
	}
}

// openDB opens the database at url for the test.
func openDB(t *testing.T, url string) *tenant.DB {
	t.Helper()
	db, err := tenant.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sftplogin.NewDirectory(db).EnsureHostKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// The sftpActivity subscription with the graphql-ws client library: the
// events two SFTP nodes' recorders write reach subscribers on both API
// nodes (the database's notifications), each hearing only what it may read
// and what its filter asks for: owners the account (or the filter's
// actions, path prefix or user), a user their own events, staff the
// account they name, no one another account's.
func TestActivitySubscriptionOverWebSocket(t *testing.T) {
	url := pgtest.NewDB(t)
	db := openDB(t, url)
	nodeA, nodeB := newAPINode(t, url, db, 4, 0), newAPINode(t, url, db, 4, 0)
	acme, owner := nodeA.account("Acme", "owner@acme.example")
	beta, betaOwner := nodeA.account("Beta", "owner@beta.example")
	userGID, user := nodeA.user(owner, "user@acme.example", "USER")
	staff := nodeA.staff("support@skiff.example")
	wsURL := func(n *apiNode) string { return "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/graphql" }
	jsB, jsA := startJSClients(t, wsURL(nodeB)), startJSClients(t, wsURL(nodeA))

	subscribe := func(js *jsClients, sub, token string, variables map[string]any) {
		js.send(map[string]any{"op": "connect", "client": sub, "token": token, "via": "init"})
		js.send(map[string]any{"op": "subscribe", "client": sub, "sub": sub, "query": activitySubscription, "variables": variables})
	}
	subscribe(jsB, "owner", owner, nil)
	subscribe(jsB, "uploads", owner, map[string]any{"f": map[string]any{"actions": []string{"UPLOAD"}, "pathPrefix": "/My Files/"}})
	subscribe(jsB, "user", user, nil)
	subscribe(jsB, "staff", staff, map[string]any{"a": globalID("Account", acme), "f": map[string]any{"userId": userGID}})
	subscribe(jsB, "beta", betaOwner, nil)
	subscribe(jsA, "ownerA", owner, nil)
	// Refused: a user asking for another user's events, a time range,
	// staff without an account, another account.
	subscribe(jsB, "nosy", user, map[string]any{"f": map[string]any{"userId": globalID("User", userID(t, db, "owner@acme.example"))}})
	subscribe(jsB, "ranged", owner, map[string]any{"f": map[string]any{"from": "2026-01-01T00:00:00Z"}})
	subscribe(jsB, "staffless", staff, nil)
	subscribe(jsB, "foreign", betaOwner, map[string]any{"a": globalID("Account", acme)})
	for sub, code := range map[string]string{"nosy": "NOT_FOUND", "ranged": "BAD_USER_INPUT", "staffless": "BAD_USER_INPUT", "foreign": "NOT_FOUND"} {
		jsB.wait(sub+" to be refused with "+code, 10*time.Second, subRefused(sub, code))
	}
	for _, c := range []string{"owner", "uploads", "user", "staff", "beta"} {
		jsB.wait(c+" to connect", 10*time.Second, clientEv(c, "connected"))
	}
	jsA.wait("ownerA to connect", 10*time.Second, clientEv("ownerA", "connected"))

	// Two SFTP nodes' recorders write.
	recorder := func(node string) *activity.Recorder {
		r := activity.NewRecorder(db, activity.RecorderConfig{Node: node, FlushEvery: 50 * time.Millisecond})
		r.Start()
		t.Cleanup(func() { _ = r.Close(context.Background()) })
		return r
	}
	rec1, rec2 := recorder("sftp-1"), recorder("sftp-2")
	userLocal, ownerLocal, betaLocal := userID(t, db, "user@acme.example"), userID(t, db, "owner@acme.example"), userID(t, db, "owner@beta.example")
	ev := func(account, userID, login string, action activity.Action, path string) activity.Event {
		return activity.Event{AccountID: account, UserID: userID, Login: login, Action: action, Outcome: activity.Succeeded,
			Path: path, ClientAddr: "203.0.113.9"}
	}
	// A subscription is held once it hears an event: the user's upload and
	// Beta's are recorded again until every subscription has heard them
	// (a connection's "connected" comes before its subscription is held).
	const warmUp, betaWarmUp = "/My Files/warm-up.txt", "/My Files/beta warm-up.txt"
	for deadline := time.Now().Add(30 * time.Second); ; {
		rec1.Record(ev(acme, userLocal, "u1", activity.ActionUpload, warmUp))
		rec1.Record(ev(beta, betaLocal, "b1", activity.ActionUpload, betaWarmUp))
		time.Sleep(200 * time.Millisecond)
		waiting := ""
		for _, sub := range []string{"owner", "uploads", "user", "staff", "beta", "ownerA"} {
			js, path := jsB, warmUp
			switch sub {
			case "beta":
				path = betaWarmUp
			case "ownerA":
				js = jsA
			}
			if js.find(activityEvent(sub, path)) == nil {
				waiting += " " + sub
			}
		}
		if waiting == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s these subscriptions have heard nothing:%s", waiting)
		}
	}
	written := time.Now()
	rec1.Record(ev(acme, userLocal, "u1", activity.ActionUpload, "/My Files/a.txt"))
	rec1.Record(ev(acme, ownerLocal, "o1", activity.ActionDownload, "/My Files/b.txt"))
	rec1.Record(ev(beta, betaLocal, "b1", activity.ActionUpload, "/My Files/beta.txt"))
	rec2.Record(ev(acme, userLocal, "u1", activity.ActionMkdir, "/My Files/dir"))
	rec2.Record(ev(acme, ownerLocal, "o1", activity.ActionUpload, "/Other/x.bin"))
	rec2.Record(ev(acme, userLocal, "u1", activity.ActionUpload, "/My Files/c.txt"))

	all := []string{"/My Files/a.txt", "/My Files/b.txt", "/My Files/dir", "/Other/x.bin", "/My Files/c.txt", "/My Files/beta.txt"}
	hears := map[string][]string{
		"owner":   all[:5],
		"uploads": {"/My Files/a.txt", "/My Files/c.txt"},
		"user":    {"/My Files/a.txt", "/My Files/dir", "/My Files/c.txt"},
		"staff":   {"/My Files/a.txt", "/My Files/dir", "/My Files/c.txt"},
		"beta":    {"/My Files/beta.txt"},
	}
	l := jsA.wait("ownerA (on the other API node) to hear the user's upload", 10*time.Second, activityEvent("ownerA", "/My Files/a.txt"))
	t.Logf("an event recorded on an SFTP node reached a subscriber in %v", time.Since(written).Round(time.Millisecond))
	if e := digPath(l, "data", "data", "sftpActivity"); digPath(e, "action") != "UPLOAD" || digPath(e, "login") != "u1" ||
		digPath(e, "node") != "sftp-1" || digPath(e, "user", "email") != "user@acme.example" {
		t.Errorf("event: %v", e)
	}
	for _, p := range all[:5] {
		jsA.wait("ownerA to hear of "+p, 10*time.Second, activityEvent("ownerA", p))
	}
	for sub, paths := range hears {
		for _, p := range paths {
			jsB.wait(sub+" to hear of "+p, 10*time.Second, activityEvent(sub, p))
		}
	}
	time.Sleep(500 * time.Millisecond)
	for sub, paths := range hears {
		for _, p := range all {
			heard := jsB.find(activityEvent(sub, p)) != nil
			if heard && !strings.Contains(strings.Join(paths, "|"), p) {
				t.Errorf("%s heard of %s, not theirs to hear", sub, p)
			}
		}
	}
	if jsA.find(activityEvent("ownerA", "/My Files/beta.txt")) != nil {
		t.Error("ownerA heard of another account's event")
	}
}
