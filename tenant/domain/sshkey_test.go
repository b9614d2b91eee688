package domain_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"golang.org/x/crypto/ssh"
)

// keyFixture is an account with an owner, an administrator and two users,
// plus a second account, for the SSH key service.
type keyFixture struct {
	*moduleFixture
	admin, uma, vic *tenant.User
	other           *tenant.User // owner of another account
}

func newKeyFixture(t *testing.T) *keyFixture {
	t.Helper()
	f := &keyFixture{moduleFixture: newModuleFixture(t)}
	f.admin = f.newUser("ada@acme.test", tenant.RoleAdmin)
	f.uma = f.newUser("uma@acme.test", tenant.RoleUser)
	f.vic = f.newUser("vic@acme.test", tenant.RoleUser)
	_, f.other = f.newAccount("Globex", "gus@globex.test")
	return f
}

func (f *keyFixture) addKey(by *tenant.User, userID, title string) *sftpaccess.SSHKey {
	f.t.Helper()
	k, err := f.svc.SFTP.AddSSHKey(f.as(by), userID, title, testkit.AuthorizedKey(testkit.Ed25519Key(f.t), "me@laptop"))
	if err != nil {
		f.t.Fatalf("%s adds a key for %s: %v", by.Email, userID, err)
	}
	return k
}

// wantNotFound checks the error is exactly the one a missing object gives.
func (f *keyFixture) wantNotFound(err error, what, doing string) {
	f.t.Helper()
	if tenant.ErrorCode(err) != tenant.ENotFound || tenant.ErrorMessage(err) != what+" not found" {
		f.t.Errorf("%s: got %v, want %q not found", doing, err, what)
	}
}

// auditKinds returns the audit trail's ssh_key events for a key, oldest first.
func (f *keyFixture) auditKinds(keyID string) []string {
	f.t.Helper()
	var kinds []string
	if err := f.svc.DB.X.Select(&kinds, `SELECT kind FROM audit_events WHERE target_id = $1 ORDER BY at, kind`, keyID); err != nil {
		f.t.Fatal(err)
	}
	return kinds
}

func TestAddSSHKey(t *testing.T) {
	f := newKeyFixture(t)
	key := testkit.Ed25519Key(t)
	k, err := f.svc.SFTP.AddSSHKey(f.as(f.uma), f.uma.ID, "  Work laptop  ", testkit.AuthorizedKey(key, "uma@laptop"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Title != "Work laptop" || k.UserID != f.uma.ID || k.AccountID != f.account.ID || k.Algorithm != "ssh-ed25519" ||
		k.Bits != 256 || k.Fingerprint != ssh.FingerprintSHA256(key) || k.Comment != "uma@laptop" ||
		k.CreatedBy != f.uma.Name || k.LastUsedAt != nil || !k.CreatedAt.Equal(f.now) {
		t.Errorf("added key = %+v", k)
	}
	keys, err := f.svc.SFTP.SSHKeys(f.as(f.uma), f.uma.ID)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID || keys[0].Title != "Work laptop" {
		t.Fatalf("uma's keys = %+v, %v; want the added key", keys, err)
	}
	if got := f.auditKinds(k.ID); len(got) != 1 || got[0] != "ssh_key.added" {
		t.Errorf("audit trail = %v, want ssh_key.added", got)
	}

	// The user is told, with what they need to recognise the key.
	mails := f.emailsTo(outbox.EmailSSHKeyAdded, "uma@acme.test")
	if len(mails) != 1 {
		t.Fatalf("%d key emails to uma, want 1", len(mails))
	}
	d := mails[0].Data
	if d["Title"] != "Work laptop" || d["Fingerprint"] != k.Fingerprint || d["Algorithm"] != "ssh-ed25519" ||
		d["AddedBy"] != f.uma.Name || d["UserName"] != f.uma.Name || d["AccountName"] != "Acme" {
		t.Errorf("email data = %v", d)
	}

	// The same key again on the same user is a user error naming the field.
	_, err = f.svc.SFTP.AddSSHKey(f.as(f.admin), f.uma.ID, "Again", testkit.AuthorizedKey(key, "other comment"))
	if tenant.ErrorCode(err) != tenant.EConflict || tenant.ErrorField(err) != "publicKey" || tenant.ErrorMessage(err) != "this key is already added to this user" {
		t.Errorf("duplicate key: got %v", err)
	}
	// On another user it is allowed: logins name the user, so nothing is ambiguous.
	if _, err := f.svc.SFTP.AddSSHKey(f.as(f.admin), f.vic.ID, "Shared", testkit.AuthorizedKey(key, "")); err != nil {
		t.Errorf("same key on another user: %v", err)
	}

	// Refused input changes nothing and sends nothing.
	for _, tt := range []struct{ title, key, field string }{
		{"   ", testkit.AuthorizedKey(testkit.Ed25519Key(t), ""), "title"},
		{strings.Repeat("t", 201), testkit.AuthorizedKey(testkit.Ed25519Key(t), ""), "title"},
		{"Bell\a", testkit.AuthorizedKey(testkit.Ed25519Key(t), ""), "title"},
		{"Old", testkit.DSALine(), "publicKey"},
	} {
		if _, err := f.svc.SFTP.AddSSHKey(f.as(f.uma), f.uma.ID, tt.title, tt.key); tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != tt.field {
			t.Errorf("title %q: got %v, want INVALID on %s", tt.title, err, tt.field)
		}
	}
	if keys, _ := f.svc.SFTP.SSHKeys(f.as(f.uma), f.uma.ID); len(keys) != 1 {
		t.Errorf("uma has %d keys after refusals, want 1", len(keys))
	}
	if n := len(f.emailsTo(outbox.EmailSSHKeyAdded, "uma@acme.test")); n != 1 {
		t.Errorf("%d key emails to uma after refusals, want 1", n)
	}
}

func TestSSHKeyPermissions(t *testing.T) {
	f := newKeyFixture(t)
	umaKey := f.addKey(f.uma, f.uma.ID, "Uma's own")
	f.addKey(f.admin, f.vic.ID, "Added by the admin")
	f.advance(time.Second) // keys list oldest first
	f.addKey(f.owner, f.uma.ID, "Added by the owner")
	otherKey := f.addKey(f.other, f.other.ID, "Globex key")
	random := uuid.NewString()

	// A user cannot reach another user's keys; another account cannot reach
	// any; and each looks exactly like something that does not exist.
	for _, tt := range []struct {
		name   string
		by     *tenant.User
		userID string
	}{
		{"user for another user", f.uma, f.vic.ID},
		{"another account's owner", f.other, f.uma.ID},
		{"owner for another account's user", f.owner, f.other.ID},
		{"unknown user", f.owner, random},
		{"malformed user ID", f.owner, "not-an-id"},
	} {
		_, err := f.svc.SFTP.AddSSHKey(f.as(tt.by), tt.userID, "Mine now", testkit.AuthorizedKey(testkit.Ed25519Key(t), ""))
		f.wantNotFound(err, "user", tt.name+": add")
		_, err = f.svc.SFTP.SSHKeys(f.as(tt.by), tt.userID)
		f.wantNotFound(err, "user", tt.name+": list")
	}
	for _, tt := range []struct {
		name  string
		by    *tenant.User
		keyID string
	}{
		{"user on another user's key", f.vic, umaKey.ID},
		{"another account's owner", f.other, umaKey.ID},
		{"owner on another account's key", f.owner, otherKey.ID},
		{"unknown key", f.owner, random},
		{"malformed key ID", f.owner, "42"},
	} {
		_, err := f.svc.SFTP.RenameSSHKey(f.as(tt.by), tt.keyID, "Hijacked")
		f.wantNotFound(err, "SSH key", tt.name+": rename")
		_, err = f.svc.SFTP.DeleteSSHKey(f.as(tt.by), tt.keyID)
		f.wantNotFound(err, "SSH key", tt.name+": delete")
	}
	if keys, _ := f.svc.SFTP.SSHKeys(f.as(f.uma), f.uma.ID); len(keys) != 2 || keys[0].Title != "Uma's own" {
		t.Errorf("uma's keys after refused changes = %+v", keys)
	}

	// Owners and administrators manage anyone's keys in their account; users their own.
	if k, err := f.svc.SFTP.RenameSSHKey(f.as(f.admin), umaKey.ID, " Renamed by admin "); err != nil || k.Title != "Renamed by admin" {
		t.Errorf("admin renames uma's key: %+v, %v", k, err)
	}
	if k, err := f.svc.SFTP.RenameSSHKey(f.as(f.uma), umaKey.ID, "Laptop"); err != nil || k.Title != "Laptop" || k.Fingerprint != umaKey.Fingerprint {
		t.Errorf("uma renames her key: %+v, %v", k, err)
	}
	if _, err := f.svc.SFTP.RenameSSHKey(f.as(f.uma), umaKey.ID, ""); tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != "title" {
		t.Errorf("empty title: got %v, want INVALID on title", err)
	}
	vicKeys, err := f.svc.SFTP.SSHKeys(f.as(f.owner), f.vic.ID)
	if err != nil || len(vicKeys) != 1 {
		t.Fatalf("owner lists vic's keys: %+v, %v", vicKeys, err)
	}
	if k, err := f.svc.SFTP.DeleteSSHKey(f.as(f.owner), vicKeys[0].ID); err != nil || k.ID != vicKeys[0].ID {
		t.Errorf("owner deletes vic's key: %+v, %v", k, err)
	}
	if k, err := f.svc.SFTP.DeleteSSHKey(f.as(f.uma), umaKey.ID); err != nil || k.Title != "Laptop" {
		t.Errorf("uma deletes her key: %+v, %v", k, err)
	}
	_, err = f.svc.SFTP.DeleteSSHKey(f.as(f.uma), umaKey.ID)
	f.wantNotFound(err, "SSH key", "deleting twice")
	if keys, _ := f.svc.SFTP.SSHKeys(f.as(f.vic), f.vic.ID); len(keys) != 0 {
		t.Errorf("vic still has %d keys", len(keys))
	}
	want := []string{"ssh_key.added", "ssh_key.renamed", "ssh_key.renamed", "ssh_key.deleted"}
	if got := f.auditKinds(umaKey.ID); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit trail of uma's key = %v, want %v", got, want)
	}

	// Renaming to the same title is not a change.
	k := f.addKey(f.uma, f.uma.ID, "Same")
	if _, err := f.svc.SFTP.RenameSSHKey(f.as(f.uma), k.ID, "Same"); err != nil {
		t.Fatal(err)
	}
	if got := f.auditKinds(k.ID); len(got) != 1 {
		t.Errorf("renaming to the same title was audited: %v", got)
	}

	// A deleted user gets no new keys.
	if _, err := f.svc.People.DeleteUser(f.ownerCtx, f.vic.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.SFTP.AddSSHKey(f.as(f.admin), f.vic.ID, "Too late", testkit.AuthorizedKey(testkit.Ed25519Key(t), ""))
	f.wantNotFound(err, "user", "adding a key to a deleted user")

	// Staff and anonymous callers are not account users.
	if _, err := f.svc.SFTP.AddSSHKey(f.staff, f.uma.ID, "Support", testkit.AuthorizedKey(testkit.Ed25519Key(t), "")); tenant.ErrorCode(err) != tenant.EForbidden {
		t.Errorf("staff adds a key: got %v, want FORBIDDEN", err)
	}
	if _, err := f.svc.SFTP.SSHKeys(context.Background(), f.uma.ID); tenant.ErrorCode(err) != tenant.EUnauthenticated {
		t.Errorf("anonymous lists keys: got %v, want UNAUTHENTICATED", err)
	}
}

func TestSSHKeysForUsers(t *testing.T) {
	f := newKeyFixture(t)
	u1 := f.addKey(f.uma, f.uma.ID, "First")
	f.advance(time.Second)
	u2 := f.addKey(f.uma, f.uma.ID, "Second")
	v1 := f.addKey(f.vic, f.vic.ID, "Vic's")
	ids := []string{f.uma.ID, f.vic.ID, f.admin.ID, f.other.ID, "junk"}

	got, err := f.svc.SFTP.SSHKeysForUsers(f.as(f.admin), f.account.ID, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[f.uma.ID]) != 2 || got[f.uma.ID][0].ID != u1.ID || got[f.uma.ID][1].ID != u2.ID ||
		len(got[f.vic.ID]) != 1 || got[f.vic.ID][0].ID != v1.ID {
		t.Errorf("admin loads %v", got)
	}
	// A user sees only their own keys in the batch.
	got, err = f.svc.SFTP.SSHKeysForUsers(f.as(f.vic), f.account.ID, ids)
	if err != nil || len(got) != 1 || len(got[f.vic.ID]) != 1 {
		t.Errorf("vic loads %v, %v; want only his key", got, err)
	}
	// Another account's principal sees nothing.
	got, err = f.svc.SFTP.SSHKeysForUsers(f.as(f.other), f.account.ID, ids)
	if err != nil || len(got) != 0 {
		t.Errorf("another account loads %v, %v; want nothing", got, err)
	}
}

// A user holds at most sftpaccess.MaxSSHKeysPerUser keys: each added key is
// a row and an email, so a user (or a stolen token) could otherwise add
// them without end. A deleted key makes room again.
func TestSSHKeysPerUserAreCapped(t *testing.T) {
	f := newKeyFixture(t)
	var last *sftpaccess.SSHKey
	for i := range sftpaccess.MaxSSHKeysPerUser {
		last = f.addKey(f.uma, f.uma.ID, "key "+strings.Repeat("x", i%5))
	}
	_, err := f.svc.SFTP.AddSSHKey(f.as(f.uma), f.uma.ID, "one more", testkit.AuthorizedKey(testkit.Ed25519Key(t), "me@laptop"))
	if tenant.ErrorCode(err) != tenant.ELimit || tenant.ErrorField(err) != "publicKey" {
		t.Fatalf("key %d: %v; want LIMIT on publicKey", sftpaccess.MaxSSHKeysPerUser+1, err)
	}
	// Another user is not affected, and a deletion makes room.
	f.addKey(f.admin, f.vic.ID, "vic's")
	if _, err := f.svc.SFTP.DeleteSSHKey(f.as(f.uma), last.ID); err != nil {
		t.Fatal(err)
	}
	f.addKey(f.uma, f.uma.ID, "after a deletion")
}
