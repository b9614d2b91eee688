package domain_test

import (
	"strings"
	"testing"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
)

func TestCredentialsLastForever(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(5)
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	never := f.newUser("nev@acme.test", tenant.RoleUser)

	f.enable(u)
	first, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, u.ID)
	if err != nil || first == nil {
		t.Fatalf("credentials after enabling: %+v, %v", first, err)
	}
	if len(first.Login) != 9 || first.Host != "sftp.skiff.test" || first.Port != 2022 ||
		len(first.HostKeyFingerprints) != 1 || first.HostKeyFingerprints[0].Fingerprint != "SHA256:testhostkeyfingerprint" {
		t.Fatalf("credentials = %+v", first)
	}
	if strings.Contains(first.Login, "@") || strings.Contains(first.Login, "uma") {
		t.Errorf("login %q is derived from the email", first.Login)
	}

	same := func(step string) {
		t.Helper()
		c, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, u.ID)
		if err != nil || c == nil || c.Login != first.Login {
			t.Fatalf("%s: credentials = %+v, %v; want login %s", step, c, err, first.Login)
		}
	}
	// Off and on again: the same login, shown in between too.
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	same("after turning SFTP off")
	f.enable(u)
	same("after turning SFTP on again")
	if got := f.emailsTo(outbox.EmailSFTPEnabled, u.Email); len(got) != 2 || got[1].Data["Login"] != first.Login {
		t.Fatalf("credentials emails after off/on: %+v", got)
	}

	// Deleted and restored: the same login, and SFTP still on.
	if _, err := f.svc.People.DeleteUser(f.ownerCtx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	same("after deletion (as admin)")
	restored, err := f.svc.People.RestoreUser(f.ownerCtx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !restored.SFTPEnabled {
		t.Fatal("the restored user lost SFTP access")
	}
	same("after restore")

	// The user sees their own; another plain user does not, and never-enabled users have none.
	own, err := f.svc.SFTP.SFTPCredentials(f.as(u), u.ID)
	if err != nil || own == nil || own.Login != first.Login {
		t.Fatalf("own credentials = %+v, %v", own, err)
	}
	_, err = f.svc.SFTP.SFTPCredentials(f.as(never), u.ID)
	f.wantCode(err, tenant.ENotFound, "another user's credentials")
	if c, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, never.ID); err != nil || c != nil {
		t.Fatalf("credentials of a never-enabled user = %+v, %v; want none", c, err)
	}
	_, otherOwner := f.newAccount("Globex", "gina@globex.test")
	_, err = f.svc.SFTP.SFTPCredentials(f.as(otherOwner), u.ID)
	f.wantCode(err, tenant.ENotFound, "another tenant's credentials")
}

func TestSFTPCredentialsForUsers(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(5)
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	v := f.newUser("vic@acme.test", tenant.RoleUser)
	never := f.newUser("nev@acme.test", tenant.RoleUser)
	f.enable(u)
	f.enable(v)
	ids := []string{u.ID, v.ID, never.ID, "not-an-id"}

	all, err := f.svc.SFTP.SFTPCredentialsForUsers(f.ownerCtx, f.account.ID, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[u.ID] == nil || all[v.ID] == nil || all[u.ID].Login == all[v.ID].Login {
		t.Fatalf("admin's batch = %+v", all)
	}
	for id, c := range all {
		single, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, id)
		if err != nil || single.Login != c.Login {
			t.Fatalf("batch and single disagree for %s: %+v vs %+v (%v)", id, c, single, err)
		}
	}
	mine, err := f.svc.SFTP.SFTPCredentialsForUsers(f.as(u), f.account.ID, ids)
	if err != nil || len(mine) != 1 || mine[u.ID] == nil {
		t.Fatalf("plain user's batch = %+v, %v; want only their own", mine, err)
	}
	_, otherOwner := f.newAccount("Globex", "gina@globex.test")
	if theirs, err := f.svc.SFTP.SFTPCredentialsForUsers(f.as(otherOwner), f.account.ID, ids); err != nil || len(theirs) != 0 {
		t.Fatalf("another tenant's batch = %+v, %v; want nothing", theirs, err)
	}
}

func TestSetSFTPAccessPermissions(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(5)
	plain := f.newUser("pat@acme.test", tenant.RoleUser)
	_, err := f.svc.SFTP.SetSFTPAccess(f.as(plain), plain.ID, true)
	f.wantCode(err, tenant.EForbidden, "plain user enables themselves")
	_, otherOwner := f.newAccount("Globex", "gina@globex.test")
	_, err = f.svc.SFTP.SetSFTPAccess(f.as(otherOwner), plain.ID, true)
	f.wantCode(err, tenant.ENotFound, "another tenant's admin enables")
	if _, err := f.svc.People.DeleteUser(f.ownerCtx, plain.ID, false); err != nil {
		t.Fatal(err)
	}
	f.enableFails(plain, tenant.EConflict) // a deleted user must be restored first
	// The one licence in use is the owner's, taken with the module's first activation.
	if l, _ := f.svc.SFTP.SFTPLicences(f.ownerCtx, f.account.ID); l.Used != 1 {
		t.Fatalf("refused enablings used %d licences", l.Used-1)
	}
}
