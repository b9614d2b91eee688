package domain_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

func ptr[T any](v T) *T { return &v }

// wantGateRefuses checks the session gate ends the session l opened.
func wantGateRefuses(t *testing.T, dir *sftplogin.Directory, l *sftplogin.Login, what string) {
	t.Helper()
	if err := dir.LoginAllowed(context.Background(), l); !errors.Is(err, sftplogin.ErrSFTPAccessWithdrawn) {
		t.Errorf("%s: the gate answers %v, want access withdrawn", what, err)
	}
}

func TestSSHKeyExpiryAtLogin(t *testing.T) {
	f := newDirectoryFixture(t)
	uma, login := f.sftpUser("uma@acme.test")
	key := testkit.Ed25519Key(t)
	expires := f.now.Add(time.Hour)
	k, err := f.svc.SFTP.AddSSHKeyWith(f.as(uma), uma.ID, "Laptop", testkit.AuthorizedKey(key, ""),
		sftpaccess.SSHKeyOptions{ExpiresAt: &expires})
	if err != nil || k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) || k.Status != sftpaccess.SSHKeyActive {
		t.Fatalf("add a key expiring in an hour: %+v, %v", k, err)
	}
	ctx := context.Background()
	l, err := f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, login, key)
	if err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	if err := f.dir.LoginAllowed(ctx, l); err != nil {
		t.Fatalf("gate before expiry: %v", err)
	}
	f.advance(time.Hour) // the expiry instant itself is expired
	_, err = f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, login, key)
	wantLoginFailed(t, err, "expired key")
	wantGateRefuses(t, f.dir, l, "session of an expired key")

	// Extending the expiry makes it log in again; clearing it, for good.
	later := f.now.Add(24 * time.Hour)
	if k, err = f.svc.SFTP.UpdateSSHKey(f.as(uma), k.ID, sftpaccess.SSHKeyUpdate{SetExpiresAt: true, ExpiresAt: &later}); err != nil ||
		!k.ExpiresAt.Equal(later) {
		t.Fatalf("extend: %+v, %v", k, err)
	}
	if _, err := f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, login, key); err != nil {
		t.Errorf("after extending: %v", err)
	}
	if k, err = f.svc.SFTP.UpdateSSHKey(f.as(uma), k.ID, sftpaccess.SSHKeyUpdate{SetExpiresAt: true}); err != nil || k.ExpiresAt != nil {
		t.Fatalf("clear the expiry: %+v, %v", k, err)
	}
	f.advance(365 * 24 * time.Hour)
	if _, err := f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, login, key); err != nil {
		t.Errorf("a key that never expires, a year on: %v", err)
	}

	// Setting an expiry that has passed ends the key's sessions at once.
	l, _ = f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, login, key)
	if _, err := f.svc.SFTP.UpdateSSHKey(f.as(uma), k.ID, sftpaccess.SSHKeyUpdate{SetExpiresAt: true, ExpiresAt: ptr(f.now.Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.sessions.ended(), uma.ID+" (credential "+k.ID+")") {
		t.Errorf("sessions ended = %v, want uma's sessions of the expired key", f.sessions.ended())
	}
	wantGateRefuses(t, f.dir, l, "after expiring the key")
}

func TestSSHKeyDisabledAndReenabled(t *testing.T) {
	f := newDirectoryFixture(t)
	uma, login := f.sftpUser("uma@acme.test")
	key, other := testkit.Ed25519Key(t), testkit.Ed25519Key(t)
	ctx := context.Background()
	k, err := f.svc.SFTP.AddSSHKeyWith(f.as(uma), uma.ID, "Spare", testkit.AuthorizedKey(key, ""),
		sftpaccess.SSHKeyOptions{Status: sftpaccess.SSHKeyDisabled})
	if err != nil || k.Status != sftpaccess.SSHKeyDisabled {
		t.Fatalf("add a disabled key: %+v, %v", k, err)
	}
	if _, err := f.svc.SFTP.AddSSHKeyWith(f.as(uma), uma.ID, "Bad", testkit.AuthorizedKey(other, ""),
		sftpaccess.SSHKeyOptions{Status: "PAUSED"}); tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != "status" {
		t.Errorf("unknown status: got %v, want INVALID on status", err)
	}
	_, err = f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, login, key)
	wantLoginFailed(t, err, "disabled key")

	if k, err = f.svc.SFTP.UpdateSSHKey(f.as(uma), k.ID, sftpaccess.SSHKeyUpdate{Status: ptr(sftpaccess.SSHKeyActive)}); err != nil || k.Status != sftpaccess.SSHKeyActive {
		t.Fatalf("re-enable: %+v, %v", k, err)
	}
	l, err := f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, login, key)
	if err != nil {
		t.Fatalf("re-enabled key: %v", err)
	}
	if len(f.sessions.ended()) != 0 {
		t.Errorf("enabling a key ended sessions: %v", f.sessions.ended())
	}

	// Disabling ends the sessions of that key, here at once and everywhere at the gate.
	if k, err = f.svc.SFTP.UpdateSSHKey(f.as(f.owner), k.ID, sftpaccess.SSHKeyUpdate{Status: ptr(sftpaccess.SSHKeyDisabled)}); err != nil {
		t.Fatal(err)
	}
	if got := f.sessions.ended(); len(got) != 1 || got[0] != uma.ID+" (credential "+k.ID+")" {
		t.Errorf("sessions ended = %v, want uma's sessions of the disabled key", got)
	}
	wantGateRefuses(t, f.dir, l, "session of a disabled key")
	_, err = f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, login, key)
	wantLoginFailed(t, err, "disabled again")
}

func TestUpdateSSHKeyPermissions(t *testing.T) {
	f := newKeyFixture(t)
	ownerKey := f.addKey(f.owner, f.owner.ID, "Owner's")
	umaKey := f.addKey(f.uma, f.uma.ID, "Uma's")
	otherKey := f.addKey(f.other, f.other.ID, "Globex")
	disable := sftpaccess.SSHKeyUpdate{Status: ptr(sftpaccess.SSHKeyDisabled)}

	// Administrators may not touch an owner's key, nor may it be renamed through the old mutation.
	if _, err := f.svc.SFTP.UpdateSSHKey(f.as(f.admin), ownerKey.ID, disable); !errors.Is(err, tenant.ErrOwnersOnly) {
		t.Errorf("admin disables the owner's key: got %v, want owners only", err)
	}
	if _, err := f.svc.SFTP.RenameSSHKey(f.as(f.admin), ownerKey.ID, "Mine"); !errors.Is(err, tenant.ErrOwnersOnly) {
		t.Errorf("admin renames the owner's key: got %v, want owners only", err)
	}
	// Users reach only their own keys; other accounts nothing.
	_, err := f.svc.SFTP.UpdateSSHKey(f.as(f.vic), umaKey.ID, disable)
	f.wantNotFound(err, "SSH key", "user on another user's key")
	_, err = f.svc.SFTP.UpdateSSHKey(f.as(f.owner), otherKey.ID, disable)
	f.wantNotFound(err, "SSH key", "owner on another account's key")
	if _, err := f.svc.SFTP.UpdateSSHKey(f.as(f.uma), umaKey.ID, sftpaccess.SSHKeyUpdate{Status: ptr(sftpaccess.SSHKeyStatus("x"))}); tenant.ErrorCode(err) != tenant.EInvalid {
		t.Errorf("bad status: got %v, want INVALID", err)
	}
	if f.sessions.ended() != nil {
		t.Errorf("refused changes ended sessions: %v", f.sessions.ended())
	}

	// Users update their own keys, administrators users' keys, owners anyone's.
	title := "Uma's laptop"
	if k, err := f.svc.SFTP.UpdateSSHKey(f.as(f.uma), umaKey.ID, sftpaccess.SSHKeyUpdate{Title: &title, SetExpiresAt: true, ExpiresAt: ptr(f.now.Add(time.Hour))}); err != nil ||
		k.Title != title || k.ExpiresAt == nil {
		t.Errorf("uma updates her key: %+v, %v", k, err)
	}
	if k, err := f.svc.SFTP.UpdateSSHKey(f.as(f.admin), umaKey.ID, disable); err != nil || k.Status != sftpaccess.SSHKeyDisabled || k.Title != title {
		t.Errorf("admin disables uma's key: %+v, %v", k, err)
	}
	if k, err := f.svc.SFTP.UpdateSSHKey(f.as(f.owner), ownerKey.ID, disable); err != nil || k.Status != sftpaccess.SSHKeyDisabled {
		t.Errorf("owner disables their own key: %+v, %v", k, err)
	}
	if got := f.auditKinds(umaKey.ID); len(got) != 3 || got[1] != "ssh_key.updated" || got[2] != "ssh_key.updated" {
		t.Errorf("audit trail of uma's key = %v", got)
	}
}

func TestSSHKeyExpiryRemindersGoOutOnce(t *testing.T) {
	f := newKeyFixture(t)
	system := tenant.SystemContext(context.Background())
	add := func(u *tenant.User, title string, opts sftpaccess.SSHKeyOptions) *sftpaccess.SSHKey {
		t.Helper()
		k, err := f.svc.SFTP.AddSSHKeyWith(f.as(u), u.ID, title, testkit.AuthorizedKey(testkit.Ed25519Key(t), ""), opts)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	expiring := add(f.uma, "Expiring", sftpaccess.SSHKeyOptions{ExpiresAt: ptr(f.now.Add(10 * 24 * time.Hour))})
	add(f.vic, "Never", sftpaccess.SSHKeyOptions{})
	add(f.vic, "Disabled", sftpaccess.SSHKeyOptions{ExpiresAt: ptr(f.now.Add(24 * time.Hour)), Status: sftpaccess.SSHKeyDisabled})
	add(f.other, "Globex", sftpaccess.SSHKeyOptions{ExpiresAt: ptr(f.now.Add(30 * 24 * time.Hour))})

	run := func(ctx context.Context, want int, when string) {
		t.Helper()
		if n, err := f.svc.SFTP.SendSSHKeyExpiryReminders(ctx); err != nil || n != want {
			t.Fatalf("%s: %d reminders, %v; want %d", when, n, err, want)
		}
	}
	run(system, 0, "10 days before")
	if _, err := f.svc.SFTP.SendSSHKeyExpiryReminders(f.as(f.owner)); tenant.ErrorCode(err) != tenant.EForbidden {
		t.Errorf("an owner runs the job: got %v, want FORBIDDEN", err)
	}
	f.advance(3*24*time.Hour + time.Minute) // 7 days less a minute left
	run(system, 1, "7 days before")
	run(f.staff, 0, "again")
	f.advance(7 * 24 * time.Hour)
	run(system, 1, "on expiry")
	run(system, 0, "after expiry")
	if got := f.sessions.ended(); len(got) != 1 || got[0] != f.uma.ID+" (credential "+expiring.ID+")" {
		t.Errorf("sessions ended = %v, want those of the expired key", got)
	}

	warned, expired := f.emails(outbox.EmailSSHKeyExpiring), f.emails(outbox.EmailSSHKeyExpired)
	if len(warned) != 1 || warned[0].To != f.uma.Email || warned[0].Data["Title"] != "Expiring" {
		t.Errorf("expiring emails = %+v", warned)
	}
	if len(expired) != 1 || expired[0].To != f.uma.Email || expired[0].Data["Title"] != "Expiring" {
		t.Errorf("expired emails = %+v", expired)
	}

	// A new expiry date re-arms the reminders.
	if _, err := f.svc.SFTP.UpdateSSHKey(f.as(f.uma), expiring.ID, sftpaccess.SSHKeyUpdate{SetExpiresAt: true, ExpiresAt: ptr(f.now.Add(2 * 24 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	run(system, 1, "new expiry, 2 days before")
	run(system, 0, "new expiry, again")
}
