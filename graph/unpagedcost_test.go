package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant/sftpsessions"
)

// shareWithMany makes users users of the account and folders project
// folders, each shared with every one of those users, straight in the
// database (the service would take minutes).
func (e *env) shareWithMany(accountID string, users, folders int) {
	e.t.Helper()
	if err := e.svc.DB.InAccount(context.Background(), accountID, func(tx *sqlx.Tx) error {
		for _, st := range []struct {
			q string
			n int
		}{
			{`INSERT INTO users (account_id, email, name, role, group_id)
				SELECT $1, 'member' || g || '@many.example', 'Member number ' || g, 'USER',
					(SELECT group_id FROM users WHERE account_id = $1 LIMIT 1)
				FROM generate_series(1, $2::int) g`, users},
			{`INSERT INTO project_folders (account_id, name, created_by)
				SELECT $1, 'Folder ' || g, (SELECT id FROM users WHERE account_id = $1 AND role = 'OWNER' LIMIT 1)
				FROM generate_series(1, $2::int) g`, folders},
			{`INSERT INTO folder_shares (account_id, folder_id, user_id, preset)
				SELECT $1, f.id, u.id, 'READ' FROM project_folders f, users u
				WHERE f.account_id = $1 AND u.account_id = $1 AND u.role = 'USER' AND $2::int > 0`, 1},
		} {
			if _, err := tx.Exec(st.q, accountID, st.n); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// peakHeap samples the process's heap until stop is called and returns the
// largest value seen and the bytes allocated meanwhile.
func peakHeap() (stop func() (peak, allocated uint64)) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, alloc0 := ms.HeapAlloc, ms.TotalAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		runtime.ReadMemStats(&ms)
		return peak.Load(), ms.TotalAlloc - alloc0
	}
}

// measure is a measurement, not a check: it runs with
// SKIFF_MEASURE_UNPAGED=1 only (it takes half a minute and several hundred
// MB). It seeds an account of users users and folders folders, each shared
// with all of them, and logs what each query costs the owner
// (docs/GRAPHQL.md, "Limits").
func measure(t *testing.T, users, folders int, queries ...[2]string) {
	if os.Getenv("SKIFF_MEASURE_UNPAGED") == "" {
		t.Skip("a measurement: set SKIFF_MEASURE_UNPAGED=1 to run it")
	}
	e := newEnv(t)
	acme, owner := e.account("Acme", "owner@acme.example")
	e.shareWithMany(acme, users, folders)
	for _, q := range queries {
		stop := peakHeap()
		start := time.Now()
		r := e.do(owner, q[1], nil)
		took := time.Since(start)
		peak, alloc := stop()
		t.Logf("%s: %v, peak heap +%d MB, allocated %d MB, %d bytes of data, errors %+v", q[0], took, peak>>20, alloc>>20, len(r.Data), r.Errors)
	}
}

// A page of 100 folders, each shared with 2,000 users, with and without
// their members.
func TestMeasureUnpagedMembers(t *testing.T) {
	page := [2]string{"100 folders without members", `{ account { projectFolders(first: 100) { edges { node { id } } } } }`}
	measure(t, 2000, 100, page, page, [2]string{"100 folders × 2,000 members", `{ account { projectFolders(first: 100) { edges { node { id
		members { user { name email sshKeys { fingerprint } } } } } } } }`})
}

// usersCsv of 5,000 users, once and under 100 aliases.
func TestMeasureUsersCSVAliases(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "c%d: usersCsv ", i)
	}
	measure(t, 5000, 0, [2]string{"usersCsv of 5,000 users", `{ account { usersCsv } }`},
		[2]string{"100 × usersCsv of 5,000 users", "{ account { " + b.String() + "} }"})
}

// An unpaged list (ProjectFolder.members, Account.sftpSessions,
// User.sshKeys) counts its selection once per item it holds, as a paged one
// counts it once per item of `first`: a page of folders with thousands of
// members each is refused as soon as the members are loaded, rather than
// built whole (hundreds of MB) and then refused by the response limit.
// Within the limit a list comes whole, never cut short.
func TestUnpagedListsCountPerItem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, owner := e.account("Acme", "owner@acme.example")
	e.shareWithMany(acme, 2100, 5)

	// 2 folders × 2,100 members × 3 is over 10,000: refused whole, with no
	// data, however small the response would have been. 5 folders hold
	// 10,500 shares, more than can come under the limit whatever is
	// asked of each: they are refused before the shares are read, when
	// the members' loader takes the five folders in one batch (a slow
	// machine may split the batch; then a loaded list is refused).
	for _, tc := range []struct {
		first string
		want  []string // one of
	}{
		{"2", []string{"ProjectFolder.members holds 2100 items here, and each counts its selection of 3"}},
		{"5", []string{"ProjectFolder.members: the folders asked for are shared more than",
			"ProjectFolder.members holds 2100 items here, and each counts its selection of 3"}},
	} {
		r := e.do(owner, `{ account { projectFolders(first: `+tc.first+`) { edges { node { name members { user { name email } } } } } } }`, nil)
		if len(r.Errors) != 1 || r.Errors[0].code() != "COMPLEXITY_LIMIT_EXCEEDED" || string(r.Data) != "null" && len(r.Data) != 0 {
			t.Fatalf("%s folders of 2,100 members: want only COMPLEXITY_LIMIT_EXCEEDED, got %+v (data %.200s)", tc.first, r.Errors, r.Data)
		}
		msg := r.Errors[0].Message
		if !slices.ContainsFunc(tc.want, func(w string) bool { return strings.Contains(msg, w) }) || !strings.Contains(msg, "the limit is 10000") {
			t.Errorf("%s folders: the message does not say what went over: %q", tc.first, msg)
		}
	}

	// One folder's 2,100 members with a field each: 2,100, answered whole.
	var one struct {
		Account struct {
			ProjectFolders struct {
				Edges []struct {
					Node struct {
						ID      string
						Members []struct{ Preset string }
					}
				}
			}
		}
	}
	e.mustDo(owner, `{ account { projectFolders(first: 1) { edges { node { id members { preset } } } } } }`, nil, &one)
	folder := one.Account.ProjectFolders.Edges[0].Node
	if len(folder.Members) != 2100 {
		t.Fatalf("one folder: %d members, want all 2100", len(folder.Members))
	}

	// A mutation's payload over the limit: the change is made and reported,
	// and only the list is null, with the error at its path.
	var member struct {
		Node struct {
			Members []struct{ User struct{ ID string } }
		} `json:"node"`
	}
	e.mustDo(owner, `query($id: ID!) { node(id: $id) { ... on ProjectFolder { members { user { id } } } } }`, vars{"id": folder.ID}, &member)
	r := e.do(owner, `mutation($f: ID!, $u: ID) { unshareProjectFolder(input: {folderId: $f, userId: $u}) {
		projectFolder { id members { user { name email sshKeys { fingerprint } } } } userErrors { message } } }`,
		vars{"f": folder.ID, "u": member.Node.Members[0].User.ID})
	if len(r.Errors) != 1 || r.Errors[0].code() != "COMPLEXITY_LIMIT_EXCEEDED" || fmt.Sprint(r.Errors[0].Path) != "[unshareProjectFolder projectFolder members]" {
		t.Fatalf("mutation: want COMPLEXITY_LIMIT_EXCEEDED at its members, got %+v", r.Errors)
	}
	if !strings.Contains(string(r.Data), `"id":"`+folder.ID+`","members":null},"userErrors":[]`) {
		t.Errorf("mutation: the payload is not kept: %s", r.Data)
	}
	e.mustDo(owner, `query($id: ID!) { node(id: $id) { ... on ProjectFolder { members { user { id } } } } }`, vars{"id": folder.ID}, &member)
	if len(member.Node.Members) != 2099 {
		t.Errorf("after the unshare: %d members, want 2099", len(member.Node.Members))
	}

	// SSH keys: at most 100 a user, but 100 times a page of users.
	if err := e.svc.DB.InAccount(context.Background(), acme, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO ssh_keys (account_id, user_id, title, algorithm, bits, fingerprint, public_key)
			SELECT u.account_id, u.id, 'key ' || k, 'ssh-ed25519', 256, 'SHA256:' || u.id || '-' || k, '\x00'::bytea
			FROM (SELECT * FROM users WHERE account_id = $1 ORDER BY lower(name), id LIMIT 60) u, generate_series(1, 100) k`, acme)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	keys := e.mustFail(owner, `{ account { users(first: 60) { edges { node { sshKeys { title fingerprint } } } } } }`, nil, "COMPLEXITY_LIMIT_EXCEEDED")
	if !strings.Contains(keys.Message, "User.sshKeys holds 100 items") {
		t.Errorf("keys: %q", keys.Message)
	}
	var keyPage struct {
		Account struct {
			Users struct {
				Edges []struct {
					Node struct{ SshKeys []struct{ Title string } }
				}
			}
		}
	}
	e.mustDo(owner, `{ account { users(first: 20) { edges { node { sshKeys { title } } } } } }`, nil, &keyPage)
	for _, u := range keyPage.Account.Users.Edges {
		if len(u.Node.SshKeys) != 100 {
			t.Fatalf("a page of 20 users' key titles: %d keys, want all 100", len(u.Node.SshKeys))
		}
	}

	// Live SFTP sessions, for staff of any account too.
	node := &sftpsessions.Node{DB: e.svc.DB, ID: uuid.NewString(), Name: "node-n", TTL: time.Minute}
	var started []*sftpsessions.Session
	userID := rawUserID(t, e.viewerID(owner))
	for i := range 2500 {
		started = append(started, &sftpsessions.Session{ID: uuid.NewString(), AccountID: acme, UserID: userID, Login: fmt.Sprintf("login%d", i),
			ClientAddress: "192.0.2.1", ClientSoftware: "SSH-2.0-OpenSSH_9.6", StartedAt: time.Now(), Operation: sftpsessions.Idle})
	}
	if _, err := node.Publish(context.Background(), sftpsessions.Changes{Started: started}); err != nil {
		t.Fatal(err)
	}
	staff := e.staff("support@skiff.example")
	for _, token := range []string{owner, staff} {
		err := e.mustFail(token, `query($a: ID) { account(id: $a) { sftpSessions { login clientAddress user { name email } } } }`,
			vars{"a": globalID("Account", acme)}, "COMPLEXITY_LIMIT_EXCEEDED")
		if !strings.Contains(err.Message, "Account.sftpSessions holds 2500 items") {
			t.Errorf("sessions: %q", err.Message)
		}
	}
	var sessions struct {
		Account struct{ SftpSessions []struct{ Login string } }
	}
	e.mustDo(owner, `{ account { sftpSessions { login } } }`, nil, &sessions)
	if len(sessions.Account.SftpSessions) != 2500 {
		t.Errorf("sessions with one field: %d, want all 2500", len(sessions.Account.SftpSessions))
	}
}

// Account.usersCsv is every user of the account in one value: asked for
// under 100 aliases in an account of 5,000 users it took 8.7 s and 2 GB of
// allocations (heap +597 MB) before the response limit refused it, and
// aliases of account multiplied that again. It may be asked for once per
// operation; one export is answered whole.
func TestUsersCSVOncePerOperation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, owner := e.account("Acme", "owner@acme.example")
	e.shareWithMany(acme, 300, 1)
	for _, q := range []string{
		`{ account { a: usersCsv b: usersCsv } }`,
		`{ a: account { usersCsv } b: account { usersCsv } }`,
		// Under an unpaged list, which counts it once per item it holds:
		// 300 exports.
		`{ account { projectFolders(first: 1) { edges { node { members { user { account { usersCsv } } } } } } } }`,
	} {
		err := e.mustFail(owner, q, nil, "COMPLEXITY_LIMIT_EXCEEDED")
		if !strings.Contains(err.Message, "Account.usersCsv is asked for more than once in this operation") {
			t.Errorf("%s: %q", q, err.Message)
		}
	}
	// A mutation keeps its payload: the second export is null, with the
	// error at its path.
	r := e.do(owner, `mutation { setRequireTotpForAdmins(input: {require: false}) { account { a: usersCsv b: usersCsv } userErrors { message } } }`, nil)
	if len(r.Errors) != 1 || r.Errors[0].code() != "COMPLEXITY_LIMIT_EXCEEDED" || !strings.Contains(string(r.Data), `"userErrors":[]`) {
		t.Errorf("mutation: %+v, data %.300s", r.Errors, r.Data)
	}
	var one struct{ Account struct{ UsersCsv string } }
	e.mustDo(owner, `{ account { usersCsv } }`, nil, &one)
	if rows := strings.Count(one.Account.UsersCsv, "\n"); rows != 302 { // a header, the owner and 300 users
		t.Errorf("the export has %d lines, want 302", rows)
	}
}

// A subscription's events are counted each on its own: usersCsv once per
// event is answered at every event, twice in one event is refused at every
// event, and the subscription goes on.
func TestSubscriptionEventsCountedEachOnItsOwn(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	n := newAPINode(t, url, openDB(t, url), 4, 0)
	acme, owner := n.account("Acme", "owner@acme.example")
	userID := rawUserID(t, n.viewerID(owner))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.srv.URL, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var msg struct {
		ID, Type string
		Payload  struct {
			Data   json.RawMessage
			Errors []gqlError
		}
	}
	if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + owner}}); err != nil {
		t.Fatal(err)
	}
	if err := wsjson.Read(ctx, c, &msg); err != nil || msg.Type != "connection_ack" {
		t.Fatalf("connection_init: %+v %v", msg, err)
	}
	for id, q := range map[string]string{
		"once":  `subscription { sftpSessionEvents { kind session { user { account { usersCsv } } } } }`,
		"twice": `subscription { sftpSessionEvents { kind session { user { account { a: usersCsv b: usersCsv } } } } }`,
	} {
		if err := wsjson.Write(ctx, c, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": q}}); err != nil {
			t.Fatal(err)
		}
	}
	// Sessions start until each subscription has heard of two (the first
	// may start before the subscriptions listen).
	node := &sftpsessions.Node{DB: n.svc.DB, ID: uuid.NewString(), Name: "node-n", TTL: time.Minute}
	go func() {
		for ctx.Err() == nil {
			sess := &sftpsessions.Session{ID: uuid.NewString(), AccountID: acme, UserID: userID, Login: "n" + userID[:6],
				ClientAddress: "192.0.2.1", ClientSoftware: "SSH-2.0-OpenSSH_9.6", StartedAt: time.Now(), Operation: sftpsessions.Idle}
			_, _ = node.Publish(ctx, sftpsessions.Changes{Started: []*sftpsessions.Session{sess}})
			time.Sleep(200 * time.Millisecond)
		}
	}()
	heard := map[string]int{}
	for heard["once"] < 2 || heard["twice"] < 2 {
		if err := wsjson.Read(ctx, c, &msg); err != nil {
			t.Fatalf("heard %v: %v", heard, err)
		}
		switch {
		case msg.Type != "next":
			t.Fatalf("%s: %s %+v", msg.ID, msg.Type, msg.Payload)
		case msg.ID == "once" && (len(msg.Payload.Errors) > 0 || !strings.Contains(string(msg.Payload.Data), "owner@acme.example")):
			t.Fatalf("once: event %d: %+v", heard["once"]+1, msg.Payload)
		case msg.ID == "twice" && (len(msg.Payload.Errors) != 1 || msg.Payload.Errors[0].code() != "COMPLEXITY_LIMIT_EXCEEDED" ||
			!strings.Contains(msg.Payload.Errors[0].Message, "Account.usersCsv is asked for more than once")):
			t.Fatalf("twice: event %d: %+v, data %s", heard["twice"]+1, msg.Payload.Errors, msg.Payload.Data)
		}
		heard[msg.ID]++
		msg.Payload.Data, msg.Payload.Errors = nil, nil
	}
}
