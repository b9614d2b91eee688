package graph_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/tenant/sftpsessions"
)

const (
	sftpSessionsQuery = `query($a: ID!) { account(id: $a) { sftpSessions { id user { email } login clientAddress clientSoftware
		startedAt bytesIn bytesOut operation operationPath openFiles currentOperation node updatedAt endRequestedAt } } }`
	disconnectSession = `mutation($id: ID!) { disconnectSftpSession(input: {id: $id}) { session { id login } userErrors { code message } } }`
)

// sessionsFixture is two accounts, Acme with an administrator and a user,
// Beta, and support staff: IDs and tokens.
type sessionsFixture struct {
	e                                    *env
	acme, beta, adminGID, userGID        string
	owner, betaOwner, admin, user, staff string
}

func newSessionsFixture(t *testing.T) sessionsFixture {
	f := sessionsFixture{e: newEnv(t)}
	f.acme, f.owner = f.e.account("Acme", "owner@acme.example")
	f.beta, f.betaOwner = f.e.account("Beta", "owner@beta.example")
	f.adminGID, f.admin = f.e.user(f.owner, "admin@acme.example", "ADMIN")
	f.userGID, f.user = f.e.user(f.owner, "user@acme.example", "USER")
	f.staff = f.e.staff("support@skiff.example")
	return f
}

type sftpSessionJSON struct {
	ID               string
	User             struct{ Email string }
	Login            string
	ClientAddress    string
	ClientSoftware   string
	BytesIn          int64
	BytesOut         int64
	Operation        string
	OperationPath    *string
	OpenFiles        int
	CurrentOperation string
	Node             string
	EndRequestedAt   *string
}

// account.sftpSessions and disconnectSftpSession over GraphQL: every field
// of a published session, who sees which sessions, who may end them, and
// the audit record of an end.
func TestSftpSessionsOverGraphQL(t *testing.T) {
	f := newSessionsFixture(t)
	e, acme, beta, owner, betaOwner, admin, user, staff := f.e, f.acme, f.beta, f.owner, f.betaOwner, f.admin, f.user, f.staff
	adminGID, userGID := f.adminGID, f.userGID
	ctx := context.Background()

	node := &sftpsessions.Node{DB: e.svc.DB, ID: uuid.NewString(), Name: "node-b", TTL: time.Minute}
	uploading := &sftpsessions.Session{ID: uuid.NewString(), AccountID: acme, UserID: localID(userGID), Login: "u123456",
		ClientAddress: "203.0.113.9", ClientSoftware: "SSH-2.0-OpenSSH_9.6", StartedAt: time.Now().Add(-time.Minute),
		BytesIn: 1 << 20, BytesOut: 42, Operation: sftpsessions.Uploading, OperationPath: "/Projects/x.bin", Transfers: 1}
	adminSession := &sftpsessions.Session{ID: uuid.NewString(), AccountID: acme, UserID: localID(adminGID), Login: "a123456",
		ClientAddress: "198.51.100.7", ClientSoftware: "SSH-2.0-WinSCP", StartedAt: time.Now(), Operation: sftpsessions.Idle}
	if _, err := node.Publish(ctx, sftpsessions.Changes{Started: []*sftpsessions.Session{uploading, adminSession}}); err != nil {
		t.Fatal(err)
	}
	list := func(token, accountID string) []sftpSessionJSON {
		t.Helper()
		var out struct {
			Account struct{ SftpSessions []sftpSessionJSON }
		}
		e.mustDo(token, sftpSessionsQuery, vars{"a": globalID("Account", accountID)}, &out)
		return out.Account.SftpSessions
	}

	got := list(owner, acme)
	if len(got) != 2 {
		t.Fatalf("the owner sees %d sessions, want 2", len(got))
	}
	s := got[0]
	if s.User.Email != "user@acme.example" || s.Login != "u123456" || s.ClientAddress != "203.0.113.9" ||
		s.ClientSoftware != "SSH-2.0-OpenSSH_9.6" || s.BytesIn != 1<<20 || s.BytesOut != 42 || s.Operation != "UPLOADING" ||
		deref(s.OperationPath) != "/Projects/x.bin" || s.OpenFiles != 1 || s.CurrentOperation != "uploading /Projects/x.bin" ||
		s.Node != "node-b" || s.EndRequestedAt != nil {
		t.Errorf("listed %+v", s)
	}
	if got[1].Operation != "IDLE" || got[1].OperationPath != nil || got[1].CurrentOperation != "idle" {
		t.Errorf("idle session listed %+v", got[1])
	}
	if got := list(admin, acme); len(got) != 2 {
		t.Errorf("the administrator sees %d sessions, want 2", len(got))
	}
	if got := list(user, acme); len(got) != 1 || got[0].Login != "u123456" {
		t.Errorf("the user sees %+v, want only their own", got)
	}
	if got := list(staff, acme); len(got) != 2 {
		t.Errorf("staff see %d sessions, want 2", len(got))
	}
	if got := list(betaOwner, beta); len(got) != 0 {
		t.Errorf("Beta's owner sees %d sessions in Beta, want none", len(got))
	}

	foreign := e.mustFail(betaOwner, disconnectSession, vars{"id": s.ID}, "NOT_FOUND")
	e.mustFail(user, disconnectSession, vars{"id": s.ID}, "FORBIDDEN")
	e.mustFail(owner, disconnectSession, vars{"id": globalID("SftpSession", "not-a-uuid")}, "NOT_FOUND")
	// Another account's session, a malformed ID and one of another type all
	// read the same: nothing tells them apart.
	for _, id := range []string{"garbage", globalID("User", "x")} {
		if x := e.mustFail(owner, disconnectSession, vars{"id": id}, "NOT_FOUND"); x.Message != foreign.Message {
			t.Errorf("disconnecting %q: %q; another account's session gets %q", id, x.Message, foreign.Message)
		}
	}
	var out struct {
		DisconnectSftpSession struct {
			Session    *struct{ ID, Login string }
			UserErrors []userError
		}
	}
	e.mustDo(admin, disconnectSession, vars{"id": s.ID}, &out)
	if p := out.DisconnectSftpSession; p.Session == nil || p.Session.ID != s.ID || len(p.UserErrors) != 0 {
		t.Errorf("disconnect: %+v", p)
	}
	if got := list(owner, acme); got[0].EndRequestedAt == nil {
		t.Error("the session's end was not recorded as asked for")
	}
	ended, err := node.Publish(ctx, sftpsessions.Changes{})
	if err != nil || len(ended) != 1 || ended[0] != uploading.ID {
		t.Errorf("the node is told to end %v (%v), want %s", ended, err, uploading.ID)
	}
	e.mustDo(staff, disconnectSession, vars{"id": got[1].ID}, &out)
	var actors []string
	if err := e.svc.DB.InAccount(ctx, acme, func(tx *sqlx.Tx) error {
		return tx.Select(&actors, `SELECT actor_kind FROM audit_events WHERE kind = 'sftp_session.disconnected' ORDER BY at`)
	}); err != nil || strings.Join(actors, ",") != "USER,STAFF" {
		t.Errorf("audit trail: %v, %v; want the administrator's then staff's", actors, err)
	}
}

// liveSftpSession publishes an idle SFTP session of the user's on a node of
// its own, as a node does at login, and returns the session and the node.
func (e *env) liveSftpSession(accountID, userID string) *sftpsessions.Session {
	e.t.Helper()
	node := &sftpsessions.Node{DB: e.svc.DB, ID: uuid.NewString(), Name: "node-n", TTL: time.Minute}
	sess := &sftpsessions.Session{ID: uuid.NewString(), AccountID: accountID, UserID: userID, Login: "n" + userID[:6],
		ClientAddress: "192.0.2.1", ClientSoftware: "SSH-2.0-OpenSSH_9.6", StartedAt: time.Now(), Operation: sftpsessions.Idle}
	if _, err := node.Publish(context.Background(), sftpsessions.Changes{Started: []*sftpsessions.Session{sess}}); err != nil {
		e.t.Fatal(err)
	}
	sess.NodeID, sess.NodeName = node.ID, node.Name
	return sess
}

// An SFTP session is a Node: node(id:) fetches it, live, for whoever
// Account.sftpSessions shows it to (owners, administrators and staff every
// session, a user their own), and is null for anyone else and once the
// session has ended or its node has gone.
func TestSftpSessionIsANode(t *testing.T) {
	f := newSessionsFixture(t)
	e, acme, owner, betaOwner, admin, user, staff := f.e, f.acme, f.owner, f.betaOwner, f.admin, f.user, f.staff
	userGID := f.userGID
	_, other := e.user(owner, "other@acme.example", "USER")

	sess := e.liveSftpSession(acme, localID(userGID))
	id := globalID("SftpSession", sess.ID)
	const q = `query($id: ID!) { node(id: $id) { id ... on SftpSession { user { email } login clientAddress node } } }`
	type nodeJSON struct {
		ID            string
		User          struct{ Email string }
		Login         string
		ClientAddress string
		Node          string
	}
	node := func(token, id string) *nodeJSON {
		t.Helper()
		var out struct{ Node *nodeJSON }
		e.mustDo(token, q, vars{"id": id}, &out)
		return out.Node
	}
	for who, tok := range map[string]string{"owner": owner, "administrator": admin, "user themself": user, "staff": staff} {
		n := node(tok, id)
		if n == nil || n.ID != id || n.User.Email != "user@acme.example" || n.Login != sess.Login ||
			n.ClientAddress != "192.0.2.1" || n.Node != "node-n" {
			t.Errorf("node(the session) for the %s: %+v", who, n)
		}
	}
	for who, tok := range map[string]string{"another user of the account": other, "another account's owner": betaOwner} {
		if n := node(tok, id); n != nil {
			t.Errorf("node(the session) for %s: %+v, want null", who, n)
		}
	}
	if n := node(owner, globalID("SftpSession", "not-a-uuid")); n != nil {
		t.Errorf("node(a malformed session ID): %+v", n)
	}
	// One query (the session's row joined with its node's, as the list reads
	// it) in one transaction, whose scoping is the other statement.
	none := func(json.RawMessage) int { return 0 }
	idOnly := `query($id: ID!) { node(id: $id) { id } }`
	base := e.cost(owner, idOnly, vars{"id": globalID("Nothing", sess.ID)}, none, 0)
	for who, tok := range map[string]string{"owner": owner, "staff": staff} {
		if c := e.cost(tok, idOnly, vars{"id": id}, none, 0) - base; c != 2 {
			t.Errorf("node(the session) for the %s took %d statements, want 2", who, c)
		}
	}

	// Ended: logged out, or its node gone.
	ctx := context.Background()
	nodeOf := func(s *sftpsessions.Session) *sftpsessions.Node {
		return &sftpsessions.Node{DB: e.svc.DB, ID: s.NodeID, Name: s.NodeName, TTL: time.Minute}
	}
	if _, err := nodeOf(sess).Publish(ctx, sftpsessions.Changes{Ended: []string{sess.ID}}); err != nil {
		t.Fatal(err)
	}
	gone := e.liveSftpSession(acme, localID(userGID))
	if err := nodeOf(gone).Leave(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*sftpsessions.Session{sess, gone} {
		if n := node(owner, globalID("SftpSession", s.ID)); n != nil {
			t.Errorf("node(an ended session) for the owner: %+v", n)
		}
	}
}
