package graph_test

import (
	"context"
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
	e := newEnv(t)
	acme, owner := e.account("Acme", "owner@acme.example")
	beta, betaOwner := e.account("Beta", "owner@beta.example")
	adminGID, admin := e.user(owner, "admin@acme.example", "ADMIN")
	userGID, user := e.user(owner, "user@acme.example", "USER")
	staff := e.staff("support@skiff.example")
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

	e.mustFail(betaOwner, disconnectSession, vars{"id": s.ID}, "NOT_FOUND")
	e.mustFail(user, disconnectSession, vars{"id": s.ID}, "FORBIDDEN")
	e.mustFail(owner, disconnectSession, vars{"id": globalID("SftpSession", "not-a-uuid")}, "NOT_FOUND")
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
