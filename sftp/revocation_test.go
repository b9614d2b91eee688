package sftp

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
)

// keySession logs login in with signer on the node's listener at ip and checks it works.
func (f *dedicatedFixture) keySession(n *dedicatedNode, name, ip, login string, signer ssh.Signer) *liveSession {
	f.t.Helper()
	return f.sessionWith(n, name, ip, login, ssh.PublicKeys(signer))
}

// refusedWithin checks that a session in use stops working within limit:
// on another node a revocation reaches it at its gate's next check.
func (s *liveSession) refusedWithin(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := s.sftp.ReadDir("/My Files"); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s: still works %v after the revocation", s.name, limit)
}

// userContext is the user behind an SFTP login, as a principal.
func (f *dedicatedFixture) userContext(login string) (context.Context, string) {
	f.t.Helper()
	var p tenant.Principal
	if err := f.db.X.Get(&p, `SELECT u.id AS "id", u.account_id AS "accountid", u.role AS "role", u.name AS "name", u.email AS "email" FROM users u
		JOIN sftp_credentials c ON c.account_id = u.account_id AND c.user_id = u.id WHERE c.login = $1`, login); err != nil {
		f.t.Fatal(err)
	}
	p.Kind = tenant.KindUser
	return tenant.WithPrincipal(context.Background(), &p), p.ID
}

// Deleting an SSH key ends the sessions that logged in with it, and a
// password change the password sessions: on the node that made the change
// at once, on another within about a second. Other credentials' sessions
// go on.
func TestRevocationEndsSessionsOnEveryNode(t *testing.T) {
	f := newDedicatedFixture(t)
	first, second := f.node(), f.node()
	f.svc.Sessions = SessionEnder{Server: first.srv} // as skiff serve wires the service
	userCtx, userID := f.userContext(f.uma)
	doomed, kept := ed25519Signer(t), ed25519Signer(t)
	key, err := f.svc.SFTP.AddSSHKey(userCtx, userID, "laptop", testkit.AuthorizedKey(doomed.PublicKey(), ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SFTP.AddSSHKey(userCtx, userID, "server", testkit.AuthorizedKey(kept.PublicKey(), "")); err != nil {
		t.Fatal(err)
	}
	keyHere := f.keySession(first, "the deleted key on the first node", sharedTestIP, f.uma, doomed)
	keyThere := f.keySession(second, "the deleted key on the second node", sharedTestIP, f.uma, doomed)
	otherKey := f.keySession(second, "another key on the second node", sharedTestIP, f.uma, kept)
	pwHere := f.session(first, "a password session on the first node", sharedTestIP, f.uma)
	pwThere := f.session(second, "a password session on the second node", sharedTestIP, f.uma)

	if _, err := f.svc.SFTP.DeleteSSHKey(userCtx, key.ID); err != nil {
		t.Fatal(err)
	}
	keyHere.ends(t, time.Second)
	keyThere.refusedWithin(t, 2*time.Second)
	otherKey.works(t)
	pwHere.works(t)
	pwThere.works(t)

	if err := f.svc.People.ChangePassword(userCtx, f.password, "another long enough password 43"); err != nil {
		t.Fatal(err)
	}
	pwHere.ends(t, time.Second)
	pwThere.refusedWithin(t, 2*time.Second)
	otherKey.works(t)
}
