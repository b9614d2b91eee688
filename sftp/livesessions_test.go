package sftp

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sftpsessions"
)

// Test refresh interval and heartbeat lifetime: short, so that a dead
// node's sessions drop out within the test.
const (
	testPublishEvery = 200 * time.Millisecond
	testSessionsTTL  = 1500 * time.Millisecond
)

// publish runs a SessionPublisher for the node, named name, writing through
// db, with its own notification listener as skiff serve runs it. stop ends
// it (as a shutdown does).
func (f *dedicatedFixture) publish(n *dedicatedNode, name string, db *tenant.DB) (stop func()) {
	t := f.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events := &sftpsessions.Events{}
	logs := &logBuffer{}
	listened, ran := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(listened)
		_ = events.Listen(ctx, f.url, slog.New(slog.NewTextHandler(logs, nil)))
	}()
	pub := &SessionPublisher{Server: n.srv, Events: events, Every: testPublishEvery, Log: slog.New(slog.NewTextHandler(logs, nil)),
		Node: &sftpsessions.Node{DB: db, ID: uuid.NewString(), Name: name, TTL: testSessionsTTL}}
	go func() {
		defer close(ran)
		_ = pub.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-listened
		<-ran
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s publisher log:\n%s", name, logs.String())
		}
	})
	testkit.Eventually(t, name+" to listen for session changes", func() bool {
		return strings.Contains(logs.String(), "listening for changes")
	})
	return stop
}

// sessionsOf lists the account's live sessions as the principal of ctx.
func sessionsOf(t *testing.T, ctx context.Context, svc *sftpsessions.Service, accountID string) []*sftpsessions.Session {
	t.Helper()
	list, err := svc.List(ctx, accountID)
	if err != nil {
		t.Fatalf("list sessions: %v", err)
	}
	return list
}

// A session on one node is listed through any node with who, from where,
// with what client, how much moved and what it is doing; its account's
// owner ends it through another node and the client sees its connection
// close within about a second. Only the account's owners and
// administrators and staff end sessions; a user sees only their own, and
// other accounts see nothing.
func TestLiveSessionsAcrossNodes(t *testing.T) {
	f := newDedicatedFixture(t)
	first, second := f.node(), f.node()
	f.publish(first, "node-a", f.db)
	f.publish(second, "node-b", f.db)
	svc := f.svc.LiveSessions
	owner := f.ownerContext(f.acme)
	userCtx, userID := f.userContext(f.uma)
	betaOwner := f.ownerContext(f.beta)

	// A client with a long identification string, uploading through node B.
	cfg, _ := clientConfig(f.uma, ssh.Password(f.password))
	cfg.ClientVersion = "SSH-2.0-TestClient_" + strings.Repeat("x", 200)
	c, err := dial(t, second.at[sharedTestIP], cfg)
	if err != nil {
		t.Fatal(err)
	}
	uma := &liveSession{name: "Acme's user on node B", sftp: mustSFTP(t, c), closed: make(chan struct{})}
	go func() {
		c.Wait()
		close(uma.closed)
	}()
	done, err := uma.sftp.Create("/My Files/done.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := done.Write(bytes.Repeat([]byte("a"), 100_000)); err != nil {
		t.Fatal(err)
	}
	if err := done.Close(); err != nil {
		t.Fatal(err)
	}
	open, err := uma.sftp.OpenFile("/My Files/big.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Write(bytes.Repeat([]byte("b"), 5_000)); err != nil {
		t.Fatal(err)
	}
	ben := f.session(first, "Beta's user on node A", sharedTestIP, f.ben)

	var got *sftpsessions.Session
	testkit.Eventually(t, "the upload under way to show in the list", func() bool {
		list := sessionsOf(t, owner, svc, f.acme)
		if len(list) != 1 {
			return false
		}
		got = list[0]
		return got.Operation == sftpsessions.Uploading && got.BytesIn == 105_000
	})
	want := sftpsessions.Session{AccountID: f.acme, UserID: userID, NodeName: "node-b", Login: f.uma, ClientAddress: "127.0.0.1",
		ClientSoftware: cfg.ClientVersion[:sftpsessions.MaxClientSoftware], Operation: sftpsessions.Uploading,
		OperationPath: "/My Files/big.bin", Transfers: 1, BytesIn: 105_000}
	if got.AccountID != want.AccountID || got.UserID != want.UserID || got.NodeName != want.NodeName || got.Login != want.Login ||
		got.ClientAddress != want.ClientAddress || got.ClientSoftware != want.ClientSoftware || got.OperationPath != want.OperationPath ||
		got.Transfers != want.Transfers || got.BytesOut != 0 || got.EndRequestedAt != nil {
		t.Errorf("listed %+v\nwant  %+v", *got, want)
	}
	if since := time.Since(got.StartedAt); since < 0 || since > time.Minute {
		t.Errorf("started %v ago", since)
	}
	if d := got.Describe(); d != "uploading /My Files/big.bin" {
		t.Errorf("Describe() = %q", d)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the session to show idle", func() bool {
		list := sessionsOf(t, owner, svc, f.acme)
		return len(list) == 1 && list[0].Operation == sftpsessions.Idle && list[0].Transfers == 0 && list[0].Describe() == "idle"
	})

	// Who sees what.
	if list := sessionsOf(t, userCtx, svc, f.acme); len(list) != 1 || list[0].ID != got.ID {
		t.Errorf("the user sees %d sessions, want their own", len(list))
	}
	if list := sessionsOf(t, f.staff, svc, f.acme); len(list) != 1 || list[0].ID != got.ID {
		t.Errorf("staff see %d of Acme's sessions, want 1", len(list))
	}
	if list := sessionsOf(t, betaOwner, svc, f.beta); len(list) != 1 || list[0].Login != f.ben {
		t.Errorf("Beta's owner sees %+v, want only Beta's session", list)
	}
	if _, err := svc.List(betaOwner, f.acme); tenant.ErrorCode(err) != tenant.ENotFound {
		t.Errorf("Beta's owner listing Acme: %v, want NOT_FOUND", err)
	}
	if _, err := svc.Disconnect(betaOwner, got.ID); tenant.ErrorCode(err) != tenant.ENotFound {
		t.Errorf("Beta's owner ending Acme's session: %v, want NOT_FOUND", err)
	}
	if _, err := svc.Disconnect(userCtx, got.ID); tenant.ErrorCode(err) != tenant.EForbidden {
		t.Errorf("the user ending their own session: %v, want FORBIDDEN", err)
	}
	time.Sleep(300 * time.Millisecond)
	uma.works(t)

	// The owner ends it; node B hears of it and closes the connection.
	start := time.Now()
	if _, err := svc.Disconnect(owner, got.ID); err != nil {
		t.Fatal(err)
	}
	uma.ends(t, endsWithin)
	t.Logf("disconnectSftpSession: the client saw its connection end %v after the request", time.Since(start).Round(time.Millisecond))
	testkit.Eventually(t, "the ended session to leave the list", func() bool { return len(sessionsOf(t, owner, svc, f.acme)) == 0 })
	if _, err := svc.Disconnect(owner, got.ID); tenant.ErrorCode(err) != tenant.ENotFound {
		t.Errorf("ending an ended session: %v, want NOT_FOUND", err)
	}
	var audited []string
	if err := f.db.InAccount(context.Background(), f.acme, func(tx *sqlx.Tx) error {
		return tx.Select(&audited, `SELECT actor_name FROM audit_events WHERE kind = 'sftp_session.disconnected' AND target_id = $1`, userID)
	}); err != nil || len(audited) != 1 || audited[0] != "Owner" {
		t.Errorf("audit trail: %v, %v; want one event by the owner", audited, err)
	}

	// Staff end Beta's session on node A.
	bens := sessionsOf(t, f.staff, svc, f.beta)
	if len(bens) != 1 {
		t.Fatalf("staff see %d of Beta's sessions", len(bens))
	}
	if _, err := svc.Disconnect(f.staff, bens[0].ID); err != nil {
		t.Fatal(err)
	}
	ben.ends(t, endsWithin)
}

// The sessions of a node that stops without a word (its database
// connection gone, as in a crash) drop out of the list once its heartbeat
// expires; a node that shuts down removes its own at once.
func TestDeadNodesSessionsDropOut(t *testing.T) {
	f := newDedicatedFixture(t)
	live, doomed, leaving := f.node(), f.node(), f.node()
	f.publish(live, "live", f.db)
	doomedDB, err := tenant.Open(context.Background(), f.url)
	if err != nil {
		t.Fatal(err)
	}
	f.publish(doomed, "doomed", doomedDB)
	stopLeaving := f.publish(leaving, "leaving", f.db)
	owner := f.ownerContext(f.acme)
	svc := f.svc.LiveSessions

	f.session(live, "on the live node", sharedTestIP, f.uma)
	f.session(doomed, "on the doomed node", sharedTestIP, f.uma)
	f.session(leaving, "on the node that shuts down", sharedTestIP, f.uma)
	nodes := func() map[string]bool {
		out := map[string]bool{}
		for _, s := range sessionsOf(t, owner, svc, f.acme) {
			out[s.NodeName] = true
		}
		return out
	}
	testkit.Eventually(t, "the three sessions to be listed", func() bool { return len(nodes()) == 3 })

	stopLeaving()
	if n := nodes(); n["leaving"] {
		t.Errorf("a node that shut down still lists its sessions: %v", n)
	}
	doomedDB.Close()
	died := time.Now()
	testkit.Eventually(t, "the dead node's session to drop out", func() bool { return !nodes()["doomed"] })
	if since := time.Since(died); since > testSessionsTTL+time.Second {
		t.Errorf("the dead node's sessions were listed for %v, its TTL is %v", since, testSessionsTTL)
	}
	if n := nodes(); !n["live"] || len(n) != 1 {
		t.Errorf("listed nodes %v, want only the live one", n)
	}
	// The live node's refresh deletes the dead node's rows.
	testkit.Eventually(t, "the dead node's rows to be deleted", func() bool {
		var rows int
		if err := f.db.InAccount(context.Background(), f.acme, func(tx *sqlx.Tx) error {
			return tx.Get(&rows, `SELECT count(*) FROM sftp_sessions`)
		}); err != nil {
			t.Fatal(err)
		}
		return rows == 1
	})
}

// The sessions list names the login the client used: a custom login on the
// account's dedicated IP, as the activity log does, and the login ID
// elsewhere.
func TestLiveSessionsNameTheLoginUsed(t *testing.T) {
	f := newDedicatedFixture(t)
	_, userID := f.userContext(f.uma)
	if _, err := f.svc.SFTP.SetCustomSFTPLogin(f.ownerContext(f.acme), userID, "backup"); err != nil {
		t.Fatal(err)
	}
	n := f.node()
	f.session(n, "Acme's user by custom login on Acme's IP", acmeTestIP, "backup")
	f.session(n, "Acme's user by login ID on the shared address", sharedTestIP, f.uma)
	var logins []string
	for _, s := range n.srv.LiveSessions() {
		logins = append(logins, s.Login)
	}
	want := []string{"backup", f.uma}
	slices.Sort(logins)
	slices.Sort(want)
	if !slices.Equal(logins, want) {
		t.Errorf("the live sessions' logins are %v, want %v", logins, want)
	}
}
