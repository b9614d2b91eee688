package sftp

import (
	"context"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// keySession logs login in with signer on the node's listener at ip and checks it works.
func (f *dedicatedFixture) keySession(n *dedicatedNode, name, ip, login string, signer ssh.Signer) *liveSession {
	f.t.Helper()
	return f.sessionWith(n, name, ip, login, ssh.PublicKeys(signer))
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
	keyHere.ends(t, endsWithin)
	// Idle on the other node: it hears of the change and checks at once.
	keyThere.ends(t, endsWithin)
	otherKey.works(t)
	pwHere.works(t)
	pwThere.works(t)

	if err := f.svc.People.ChangePassword(userCtx, f.password, "another long enough password 43"); err != nil {
		t.Fatal(err)
	}
	pwHere.ends(t, endsWithin)
	pwThere.ends(t, endsWithin)
	otherKey.works(t)
}

// ownerContext is the first owner of the account, as a principal.
func (f *dedicatedFixture) ownerContext(accountID string) context.Context {
	f.t.Helper()
	var p tenant.Principal
	if err := f.db.X.Get(&p, `SELECT u.id AS "id", u.account_id AS "accountid", u.role AS "role", u.name AS "name", u.email AS "email"
		FROM users u WHERE u.account_id = $1 AND u.role = 'OWNER' ORDER BY u.created_at LIMIT 1`, accountID); err != nil {
		f.t.Fatal(err)
	}
	p.Kind = tenant.KindUser
	return tenant.WithPrincipal(context.Background(), &p)
}

// Every change that withdraws an open session's access ends it on every
// node within moments, even when it is idle: disabling its key, the key
// expiring (by time, with no change made), turning SFTP off for the user
// and an IP allowlist that no longer admits the session's address. The
// other node hears of each change by notification and checks its sessions
// of that user at once; a session the change leaves allowed goes on.
func TestIdleSessionsEndOnEveryNodeWhenAccessIsWithdrawn(t *testing.T) {
	f := newDedicatedFixture(t)
	first, second := f.node(), f.node()
	f.svc.Sessions = SessionEnder{Server: first.srv}
	userCtx, userID := f.userContext(f.uma)
	addKey := func(title string) (ssh.Signer, string) {
		t.Helper()
		signer := ed25519Signer(t)
		key, err := f.svc.SFTP.AddSSHKey(userCtx, userID, title, testkit.AuthorizedKey(signer.PublicKey(), ""))
		if err != nil {
			t.Fatal(err)
		}
		return signer, key.ID
	}
	ben := f.session(second, "Beta's user on the second node", sharedTestIP, f.ben)

	// Disabled on the first node.
	signer, keyID := addKey("to disable")
	disabled := f.keySession(second, "a session of the key disabled, on the second node", sharedTestIP, f.uma, signer)
	status := sftpaccess.SSHKeyDisabled
	if _, err := f.svc.SFTP.UpdateSSHKey(userCtx, keyID, sftpaccess.SSHKeyUpdate{Status: &status}); err != nil {
		t.Fatal(err)
	}
	disabled.ends(t, endsWithin)

	// Expiring by time: the session ends when its key expires, on both
	// nodes, though nothing is changed then.
	// The sessions must be up half a second before the key expires; on a
	// machine too slow for that, a new key gets twice the time.
	pw := f.session(second, "a password session on the second node", sharedTestIP, f.uma)
	for window := 3 * time.Second; ; window *= 2 {
		signer, keyID = addKey("to expire in " + window.String())
		expiresAt := time.Now().Add(window)
		if _, err := f.svc.SFTP.UpdateSSHKey(userCtx, keyID, sftpaccess.SSHKeyUpdate{SetExpiresAt: true, ExpiresAt: &expiresAt}); err != nil {
			t.Fatal(err)
		}
		expiringHere := f.keySession(first, "a session of the expiring key, on the first node", sharedTestIP, f.uma, signer)
		expiringThere := f.keySession(second, "a session of the expiring key, on the second node", sharedTestIP, f.uma, signer)
		if left := time.Until(expiresAt); left < 500*time.Millisecond {
			if window >= 20*time.Second {
				t.Fatalf("two sessions took over %v to start", window-left)
			}
			t.Logf("the sessions started %v before their key expires: again with more time", left)
			continue
		}
		time.Sleep(time.Until(expiresAt) - 500*time.Millisecond)
		expiringHere.works(t)
		expiringThere.works(t)
		expiringHere.ends(t, endsWithin)
		expiringThere.ends(t, endsWithin)
		break
	}
	pw.works(t)

	// An IP allowlist that leaves the sessions' address out.
	owner := f.ownerContext(f.acme)
	if _, err := f.svc.People.SetUserIPAllowlist(owner, userID, []string{"127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // heard and checked: the address is in
	pw.works(t)
	if _, err := f.svc.People.SetUserIPAllowlist(owner, userID, []string{"203.0.113.0/24"}); err != nil {
		t.Fatal(err)
	}
	pw.ends(t, endsWithin)
	if _, err := f.svc.People.SetUserIPAllowlist(owner, userID, nil); err != nil {
		t.Fatal(err)
	}

	// SFTP turned off for the user.
	pw = f.session(second, "a password session on the second node", sharedTestIP, f.uma)
	if _, err := f.svc.SFTP.SetSFTPAccess(owner, userID, false); err != nil {
		t.Fatal(err)
	}
	pw.ends(t, endsWithin)
	ben.works(t)

	// A group change that jails its members (no more My Files): their
	// sessions end, to reconnect to the tree they now have.
	betaOwner := f.ownerContext(f.beta)
	_, benID := f.userContext(f.ben)
	g, err := f.svc.Sharing.GroupOfUser(betaOwner, benID)
	if err != nil {
		t.Fatal(err)
	}
	perms := slices.DeleteFunc(slices.Clone(g.Permissions), func(p policy.Permission) bool { return p == policy.SFTPMyFiles })
	if _, err := f.svc.Sharing.UpdateGroup(betaOwner, sharing.UpdateGroupInput{ID: g.ID, Permissions: &perms}); err != nil {
		t.Fatal(err)
	}
	ben.ends(t, endsWithin)
}
