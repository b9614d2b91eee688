package graph_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/sftpsessions"
)

// lockedBuffer is a log sink goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// apiNode is one node of the API on a shared database: its own services,
// handler and session notification listener, served with the given read
// and write timeouts (none when zero).
type apiNode struct {
	*env
	closeWebSockets context.CancelFunc
}

// subscriptionRecheck is how often the test nodes recheck their
// subscriptions' tokens and rights.
const subscriptionRecheck = 250 * time.Millisecond

func newAPINode(t *testing.T, url string, db *tenant.DB, maxSubs int, timeouts time.Duration) *apiNode {
	t.Helper()
	e := &env{t: t, svc: domain.New(db), now: time.Now()}
	closing, closeWebSockets := context.WithCancel(context.Background())
	h := graph.NewHandler(&graph.Resolver{Tenant: e.svc}, graph.Config{
		MaxBodyBytes: 64 << 10, AllowedOrigins: []string{"https://admin.example"},
		MaxSubscriptionsPerToken: maxSubs, Closing: closing, SubscriptionRecheck: subscriptionRecheck,
	})
	e.srv = httptest.NewUnstartedServer(h)
	e.srv.Config.ReadTimeout, e.srv.Config.WriteTimeout = timeouts, timeouts
	e.srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	var listened sync.WaitGroup
	listened.Go(func() { _ = e.svc.LiveSessions.Events.Listen(ctx, url, log) })
	listened.Go(func() { _ = e.svc.Activity.Live.Listen(ctx, url, log) })
	t.Cleanup(func() {
		closeWebSockets()
		cancel()
		listened.Wait()
		e.srv.Close()
	})
	testkit.Eventually(t, "the node to listen for session changes and activity", func() bool {
		return strings.Count(logs.String(), "listening for changes") == 2
	})
	return &apiNode{env: e, closeWebSockets: closeWebSockets}
}

// jsClients drives graph/testdata/jsclients/subscriptions.mjs: the
// graphql-ws client library under node.
type jsClients struct {
	t     *testing.T
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []map[string]any
	added chan struct{}
}

func startJSClients(t *testing.T, wsURL string) *jsClients {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the graphql-ws client cannot run")
	}
	if _, err := os.Stat(filepath.Join(jsClientsDir, "node_modules", "graphql-ws")); err != nil {
		t.Skipf("the JavaScript client libraries are not installed: run `npm ci` in graph/%s (.ci/run does)", jsClientsDir)
	}
	cmd := exec.Command(node, "subscriptions.mjs")
	cmd.Dir = jsClientsDir
	cmd.Env = append(os.Environ(), "SKIFF_WS_URL="+wsURL, "NODE_NO_WARNINGS=1")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	j := &jsClients{t: t, stdin: stdin, added: make(chan struct{}, 1)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				continue
			}
			j.mu.Lock()
			j.lines = append(j.lines, m)
			j.mu.Unlock()
			select {
			case j.added <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		<-read
		if t.Failed() {
			j.mu.Lock()
			defer j.mu.Unlock()
			for _, l := range j.lines {
				b, _ := json.Marshal(l)
				t.Logf("client: %s", b)
			}
			t.Logf("node stderr:\n%s", stderr.String())
		}
	})
	return j
}

// send gives the script one command.
func (j *jsClients) send(cmd map[string]any) {
	j.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := j.stdin.Write(append(b, '\n')); err != nil {
		j.t.Fatal(err)
	}
}

// find returns the first line that match accepts.
func (j *jsClients) find(match func(map[string]any) bool) map[string]any {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, l := range j.lines {
		if match(l) {
			return l
		}
	}
	return nil
}

// wait returns the first line that match accepts, waiting up to limit.
func (j *jsClients) wait(what string, limit time.Duration, match func(map[string]any) bool) map[string]any {
	j.t.Helper()
	deadline := time.After(limit)
	for {
		if l := j.find(match); l != nil {
			return l
		}
		select {
		case <-j.added:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			j.t.Fatalf("waited %v for %s", limit, what)
		}
	}
}

// Matchers of the script's lines.
func clientEv(client, ev string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["client"] == client && m["ev"] == ev }
}

func subEv(sub, ev string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["sub"] == sub && m["ev"] == ev }
}

// sessionEvent matches the sub's event of kind about session (a local ID).
func sessionEvent(sub, kind, session string) func(map[string]any) bool {
	gid := globalID("SftpSession", session)
	return func(m map[string]any) bool {
		if m["sub"] != sub || m["ev"] != "next" {
			return false
		}
		ev, _ := digPath(m, "data", "data", "sftpSessionEvents").(map[string]any)
		return ev != nil && ev["kind"] == kind && ev["sessionId"] == gid
	}
}

// aboutSession matches any line of sub naming session.
func aboutSession(sub, session string) func(map[string]any) bool {
	gid := globalID("SftpSession", session)
	return func(m map[string]any) bool {
		b, _ := json.Marshal(m)
		return m["sub"] == sub && strings.Contains(string(b), gid)
	}
}

func digPath(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

const sessionEventsSubscription = `subscription($a: ID) { sftpSessionEvents(accountId: $a) { kind sessionId
	session { login bytesIn operation currentOperation node user { email } } } }`

// userID is the local ID of the user with email.
func userID(t *testing.T, db *tenant.DB, email string) string {
	t.Helper()
	var id string
	if err := db.CrossTenant(context.Background(), tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tx.Get(&id, `SELECT id FROM users WHERE email = $1`, email)
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// Subscriptions over WebSocket with the graphql-ws client library: a
// subscriber on one node hears of sessions published from elsewhere (the
// database's notifications), only of its own account, and a user only of
// their own sessions; the HTTP server's timeouts do not cut subscriptions;
// a bad or missing token, or a foreign Origin, gets nothing; a token holds
// at most the cap of subscriptions, over all its connections; and a
// draining node closes its WebSockets at once.
func TestSubscriptionsOverWebSocket(t *testing.T) {
	url := pgtest.NewDB(t)
	db := openDB(t, url)
	// Node A answers the test's logins and mutations (slow on a busy
	// machine); node B serves the subscriptions, with timeouts of a second
	// that no subscription may notice.
	nodeA, nodeB := newAPINode(t, url, db, 2, 0), newAPINode(t, url, db, 2, time.Second)
	acme, owner := nodeA.account("Acme", "owner@acme.example")
	beta, betaOwner := nodeA.account("Beta", "owner@beta.example")
	_, user := nodeA.user(owner, "user@acme.example", "USER")
	staff := nodeA.staff("support@skiff.example")
	js := startJSClients(t, "ws"+strings.TrimPrefix(nodeB.srv.URL, "http")+"/graphql")

	connectAndSubscribe := func(client, token, via, origin string, variables map[string]any) {
		js.send(map[string]any{"op": "connect", "client": client, "token": token, "via": via, "origin": origin})
		js.send(map[string]any{"op": "subscribe", "client": client, "sub": client, "query": sessionEventsSubscription, "variables": variables})
	}
	connectAndSubscribe("owner", owner, "init", "", nil)
	connectAndSubscribe("user", user, "header", "https://admin.example", nil)
	connectAndSubscribe("staff", staff, "init", "", map[string]any{"a": globalID("Account", acme)})
	connectAndSubscribe("beta", betaOwner, "init", "", nil)
	for _, c := range []string{"owner", "user", "staff", "beta"} {
		js.wait(c+" to connect", 10*time.Second, clientEv(c, "connected"))
	}

	// Refused: a bad token, none, a bad header token, a foreign origin.
	connectAndSubscribe("badtoken", "not-a-token", "init", "", nil)
	connectAndSubscribe("anonymous", "", "none", "", nil)
	connectAndSubscribe("badheader", "not-a-token", "header", "", nil)
	connectAndSubscribe("evil", owner, "init", "https://evil.example", nil)
	// The close frame says why (graphql-transport-ws sends nothing before it).
	for c, why := range map[string]string{"badtoken": "log in again", "anonymous": "log in first"} {
		l := js.wait(c+" to be refused", 10*time.Second, subEv(c, "error"))
		if code := digPath(l, "error", "code"); code != 4403.0 {
			t.Errorf("%s: closed with %v, want 4403", c, l["error"])
		}
		if reason, _ := digPath(l, "error", "reason").(string); !strings.Contains(reason, why) {
			t.Errorf("%s: closed with the reason %q; want one that says %q", c, reason, why)
		}
	}
	for _, c := range []string{"badheader", "evil"} {
		js.wait(c+" to be refused", 10*time.Second, subEv(c, "error"))
	}
	// Past the server's one-second timeouts: the subscriptions live on.
	time.Sleep(2500 * time.Millisecond)

	// Sessions published by an SFTP node, elsewhere.
	ctx := context.Background()
	sftpNode := &sftpsessions.Node{DB: db, ID: uuid.NewString(), Name: "sftp-1", TTL: time.Minute}
	session := func(accountID, email, login string) *sftpsessions.Session {
		return &sftpsessions.Session{ID: uuid.NewString(), AccountID: accountID, UserID: userID(t, db, email), Login: login,
			ClientAddress: "203.0.113.9", ClientSoftware: "SSH-2.0-OpenSSH_9.6", StartedAt: time.Now(), Operation: sftpsessions.Idle}
	}
	usersSession := session(acme, "user@acme.example", "u1")
	ownersSession := session(acme, "owner@acme.example", "o1")
	betasSession := session(beta, "owner@beta.example", "b1")
	published := time.Now()
	if _, err := sftpNode.Publish(ctx, sftpsessions.Changes{Started: []*sftpsessions.Session{usersSession}}); err != nil {
		t.Fatal(err)
	}
	l := js.wait("the owner to hear of the user's session", 30*time.Second, sessionEvent("owner", "STARTED", usersSession.ID))
	t.Logf("a session published through the database reached a subscriber on another node in %v", time.Since(published).Round(time.Millisecond))
	if s := digPath(l, "data", "data", "sftpSessionEvents", "session"); digPath(s, "login") != "u1" || digPath(s, "node") != "sftp-1" ||
		digPath(s, "user", "email") != "user@acme.example" || digPath(s, "currentOperation") != "idle" {
		t.Errorf("STARTED event: %v", s)
	}
	js.wait("the user to hear of their session", 30*time.Second, sessionEvent("user", "STARTED", usersSession.ID))
	js.wait("staff to hear of the session", 30*time.Second, sessionEvent("staff", "STARTED", usersSession.ID))

	if _, err := sftpNode.Publish(ctx, sftpsessions.Changes{Started: []*sftpsessions.Session{ownersSession, betasSession}}); err != nil {
		t.Fatal(err)
	}
	js.wait("the owner to hear of their session", 30*time.Second, sessionEvent("owner", "STARTED", ownersSession.ID))
	js.wait("Beta's owner to hear of Beta's session", 30*time.Second, sessionEvent("beta", "STARTED", betasSession.ID))
	usersSession.BytesIn, usersSession.Operation, usersSession.OperationPath, usersSession.Transfers = 4096, sftpsessions.Uploading, "/My Files/x.bin", 1
	if _, err := sftpNode.Publish(ctx, sftpsessions.Changes{Updated: []*sftpsessions.Session{usersSession}}); err != nil {
		t.Fatal(err)
	}
	l = js.wait("the owner to hear of the upload", 30*time.Second, sessionEvent("owner", "UPDATED", usersSession.ID))
	if s := digPath(l, "data", "data", "sftpSessionEvents", "session"); digPath(s, "bytesIn") != 4096.0 || digPath(s, "currentOperation") != "uploading /My Files/x.bin" {
		t.Errorf("UPDATED event: %v", s)
	}
	// Ended through node A's API, then by its SFTP node.
	var out struct {
		DisconnectSftpSession struct{ Session *struct{ ID string } }
	}
	nodeA.mustDo(owner, disconnectSession, vars{"id": globalID("SftpSession", usersSession.ID)}, &out)
	if _, err := sftpNode.Publish(ctx, sftpsessions.Changes{Ended: []string{usersSession.ID}}); err != nil {
		t.Fatal(err)
	}
	l = js.wait("the owner to hear the session end", 30*time.Second, sessionEvent("owner", "ENDED", usersSession.ID))
	if s := digPath(l, "data", "data", "sftpSessionEvents", "session"); s != nil {
		t.Errorf("ENDED event with a session: %v", s)
	}
	js.wait("the user to hear their session end", 30*time.Second, sessionEvent("user", "ENDED", usersSession.ID))

	// Nothing crossed accounts, and the user heard only of their own session.
	time.Sleep(500 * time.Millisecond)
	for _, leak := range []struct{ sub, session string }{
		{"owner", betasSession.ID}, {"staff", betasSession.ID}, {"user", betasSession.ID}, {"user", ownersSession.ID},
		{"beta", usersSession.ID}, {"beta", ownersSession.ID},
	} {
		if l := js.find(aboutSession(leak.sub, leak.session)); l != nil {
			t.Errorf("%s heard of a session not theirs to see: %v", leak.sub, l)
		}
	}
	for _, c := range []string{"owner", "user", "staff", "beta"} {
		if l := js.find(clientEv(c, "closed")); l != nil {
			t.Errorf("%s's connection closed: %v", c, l)
		}
	}

	// The cap: two subscriptions per token (this node's setting), over all
	// of the token's connections; a stopped one frees its slot.
	capped := nodeA.login("owner@acme.example", testPassword)
	js.send(map[string]any{"op": "connect", "client": "cap1", "token": capped, "via": "init"})
	js.send(map[string]any{"op": "connect", "client": "cap2", "token": capped, "via": "init"})
	// accepted updates the owner's session until sub hears of it (the
	// server holds the subscription), or reports that sub was refused.
	accepted := func(sub string) bool {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for n := int64(1); time.Now().Before(deadline); n++ {
			if l := js.find(subEv(sub, "next")); l != nil && digPath(l, "data", "errors") != nil {
				return false
			}
			if js.find(sessionEvent(sub, "UPDATED", ownersSession.ID)) != nil {
				return true
			}
			ownersSession.BytesIn = n
			if _, err := sftpNode.Publish(ctx, sftpsessions.Changes{Updated: []*sftpsessions.Session{ownersSession}}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s neither heard of an update nor was refused within 30s", sub)
		return false
	}
	for _, sub := range []string{"c1", "c2"} {
		js.send(map[string]any{"op": "subscribe", "client": "cap1", "sub": sub, "query": sessionEventsSubscription})
		if !accepted(sub) {
			t.Fatalf("subscription %s, within the cap, was refused: %v", sub, js.find(subEv(sub, "next")))
		}
	}
	js.send(map[string]any{"op": "subscribe", "client": "cap2", "sub": "c3", "query": sessionEventsSubscription})
	l = js.wait("the third subscription to be refused", 30*time.Second, subEv("c3", "next"))
	if digPath(l, "data", "errors") == nil || !strings.Contains(string(mustJSON(l)), "TOO_MANY_SUBSCRIPTIONS") {
		t.Errorf("third subscription: %v", l)
	}
	js.wait("the refused subscription to complete", 30*time.Second, subEv("c3", "complete"))
	// The slot is free once the server has seen the stop: a subscription
	// sent a moment later takes it (one the server saw first is refused,
	// and the client tries again).
	js.send(map[string]any{"op": "unsubscribe", "sub": "c1"})
	c4 := ""
	for i := 0; c4 == ""; i++ {
		if i == 20 {
			t.Fatal("20 subscriptions after one was stopped were refused: its slot was not freed")
		}
		sub := "c4-" + strconv.Itoa(i)
		js.send(map[string]any{"op": "subscribe", "client": "cap2", "sub": sub, "query": sessionEventsSubscription})
		if accepted(sub) {
			c4 = sub
		}
	}
	t.Logf("the stopped subscription's slot was taken by %s", c4)
	if _, err := sftpNode.Publish(ctx, sftpsessions.Changes{Ended: []string{ownersSession.ID}}); err != nil {
		t.Fatal(err)
	}
	js.wait("the subscription that took the freed slot to hear", 30*time.Second, sessionEvent(c4, "ENDED", ownersSession.ID))

	// A draining node closes its WebSockets at once.
	start := time.Now()
	nodeB.closeWebSockets()
	js.wait("the owner's connection to close", 10*time.Second, clientEv("owner", "closed"))
	t.Logf("draining: the WebSocket closed %v after", time.Since(start).Round(time.Millisecond))
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
