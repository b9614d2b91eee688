package graph_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/tenant"
)

// wsSubscribe opens a graphql-transport-ws connection with token, subscribes
// to query with vars, and returns a function that reads the subscription's
// next message ("next", "error" or "complete") with its errors (an "error"
// message's payload, a "next" one's errors), or "" once wait passes without
// one.
func wsSubscribe(t *testing.T, e *env, token, query string, v vars) func(wait time.Duration) (string, []any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/graphql"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}}); err != nil {
		t.Fatal(err)
	}
	var ack map[string]any
	if err := wsjson.Read(ctx, c, &ack); err != nil || ack["type"] != "connection_ack" {
		t.Fatalf("connection_init: %v %v", ack, err)
	}
	if err := wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query, "variables": v}}); err != nil {
		t.Fatal(err)
	}
	msgs := make(chan map[string]any, 16)
	go func() {
		defer close(msgs)
		for {
			var m map[string]any
			if err := wsjson.Read(ctx, c, &m); err != nil {
				return
			}
			if m["type"] != "ping" && m["type"] != "pong" {
				msgs <- m
			}
		}
	}()
	return func(wait time.Duration) (string, []any) {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("the connection closed")
			}
			errs, ok := m["payload"].([]any)
			if !ok {
				errs, _ = digPath(m["payload"], "errors").([]any)
			}
			return m["type"].(string), errs
		case <-time.After(wait):
			return "", nil
		}
	}
}

// errorCodeOf is the extensions.code of a graphql-transport-ws error message's first error.
func errorCodeOf(errs []any) string {
	if len(errs) == 0 {
		return ""
	}
	code, _ := digPath(errs[0], "extensions", "code").(string)
	return code
}

// An enrol-only token (two-factor required of its login and not on) may do
// nothing but enrol, over WebSocket and the CSV export too: it cannot
// subscribe to or download an account's SFTP sessions or activity, and the
// subscriptions of an administrator whose
// account then requires two-factor end, as their queries are refused.
func TestEnrolOnlyTokensCannotSubscribe(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.SubscriptionRecheck = 200 * time.Millisecond })
	acme, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	if _, err := e.svc.People.CreateStaff(tenant.SystemContext(context.Background()), "new@skiff.example", "New", testPassword); err != nil {
		t.Fatal(err)
	}
	staff, required, errs := e.loginCode("new@skiff.example", testPassword, "")
	if staff == "" || !required {
		t.Fatalf("new staff login: %q %v %+v", staff, required, errs)
	}
	const activity = `subscription($a: ID) { sftpActivity(accountId: $a) { action path } }`
	// Nor can it download an account's activity as CSV.
	if status, body, _ := e.exportCSV(staff, url.Values{"accountId": {globalID("Account", acme)}}); status != http.StatusForbidden ||
		!strings.Contains(body, `"code":"FORBIDDEN"`) || !strings.Contains(body, "enrol first") {
		t.Fatalf("an enrol-only staff token exporting the activity: %d %s; want 403 FORBIDDEN", status, body)
	}
	for _, q := range []string{sessionEventsSubscription, activity} {
		kind, errs := wsSubscribe(t, e, staff, q, vars{"a": globalID("Account", acme)})(5 * time.Second)
		if errorCodeOf(errs) != "FORBIDDEN" {
			t.Fatalf("an enrol-only staff token subscribing to %s: %q %v; want FORBIDDEN", q, kind, errs)
		}
	}

	next := wsSubscribe(t, e, admin, activity, nil)
	if kind, errs := next(500 * time.Millisecond); kind != "" {
		t.Fatalf("the administrator's subscription: %q %v", kind, errs)
	}
	e.enrolTotp(owner)
	e.mustDo(owner, `mutation { setRequireTotpForAdmins(input: {require: true}) { userErrors { message } } }`, nil, nil)
	if kind, errs := next(5 * time.Second); kind != "error" || errorCodeOf(errs) != "FORBIDDEN" {
		t.Fatalf("the administrator's subscription once two-factor is required: %q %v; want an error message, FORBIDDEN", kind, errs)
	}
}

// viewer is what an enrol-only token may read, so that a client can show
// who is logged in: who they are (user's and staff's own fields, API
// sessions), not what lies behind them. The account, its users and its
// activity, and what the user's fields lead to, are FORBIDDEN until the
// enrolment is confirmed, as the root fields that read them are.
func TestEnrolOnlyViewerShowsOnlyWhoYouAre(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	e.enrolTotp(owner)
	e.mustDo(owner, `mutation { setRequireTotpForAdmins(input: {require: true}) { userErrors { message } } }`, nil, nil)

	for _, q := range []string{
		`{ viewer { ... on UserViewer { account { users { edges { node { email } } } } } } }`,
		`{ viewer { ... on UserViewer { account { name } } } }`,
		`{ viewer { ... on UserViewer { user { account { sftpActivity { edges { node { path } } } } } } } }`,
		`{ viewer { ... on UserViewer { user { sshKeys { title } } } } }`,
		`{ viewer { ... on UserViewer { can { manageUsers } } } }`,
		`query { viewer { ...V } } fragment V on UserViewer { user { ... on User { group { name } } } }`,
	} {
		if g := e.mustFail(admin, q, nil, "FORBIDDEN"); !strings.Contains(g.Message, "enrol first") {
			t.Errorf("%s: %q, want it to say to enrol first", q, g.Message)
		}
	}
	var who struct {
		Viewer struct {
			User        struct{ Email, Role string }
			APISessions []struct{ Current bool }
		}
	}
	e.mustDo(admin, `{ viewer { __typename ... on UserViewer { user { id email name role } apiSessions { current } } } }`, nil, &who)
	if who.Viewer.User.Email != "admin@acme.example" || len(who.Viewer.APISessions) != 1 {
		t.Fatalf("the enrol-only viewer: %+v", who)
	}
	// login's own viewer is read before the token exists, as nobody.
	r := e.do("", `mutation { login(input: {email: "admin@acme.example", password: "`+testPassword+`"}) {
		totpEnrolmentRequired viewer { ... on UserViewer { account { users { edges { node { email } } } } } } } }`, nil)
	if strings.Contains(string(r.Data), "owner@acme.example") {
		t.Fatalf("an enrol-only login's payload lists the account's users: %s", r.Data)
	}
	e.enrolTotp(admin)
	e.mustDo(admin, `{ viewer { ... on UserViewer { account { users { edges { node { email } } } } } } }`, nil, nil)
}
