package domain_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

func TestSetCustomSFTPLogin(t *testing.T) {
	f := newModuleFixture(t)
	f.activate(10)
	pool, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{netip.MustParsePrefix("192.0.2.20/32")})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.DedicatedIPs.Config = sftplogin.DedicatedIPConfig{Pool: pool}
	admin := f.newUser("ada@acme.test", tenant.RoleAdmin)
	uma := f.newUser("uma@acme.test", tenant.RoleUser)
	vic := f.newUser("vic@acme.test", tenant.RoleUser)
	never := f.newUser("nev@acme.test", tenant.RoleUser)
	f.enable(admin)
	f.enable(uma)
	f.enable(vic)
	set := func(as *tenant.User, userID, login string) error {
		t.Helper()
		_, err := f.svc.SFTP.SetCustomSFTPLogin(f.as(as), userID, login)
		return err
	}
	creds := func(u *tenant.User) *sftpaccess.Credentials {
		t.Helper()
		c, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, u.ID)
		if err != nil || c == nil {
			t.Fatalf("credentials of %s: %+v, %v", u.Email, c, err)
		}
		return c
	}

	// Without a dedicated IP there is nowhere a custom login could work.
	f.wantCode(set(f.owner, uma.ID, "uma"), tenant.EConflict, "no dedicated IP")
	if _, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, f.account.ID, ""); err != nil {
		t.Fatal(err)
	}
	accountKeys, err := f.svc.DedicatedIPs.HostKeyFingerprints(f.staff, f.account.ID)
	if err != nil {
		t.Fatal(err)
	}

	// An admin sets one; the user's credentials show it, active, with the
	// dedicated host and its keys; the user is emailed.
	if err := set(admin, uma.ID, "Backup"); err != nil {
		t.Fatal(err)
	}
	c := creds(uma)
	if c.CustomLogin != "backup" || !c.CustomLoginActive() || c.CustomLoginNote() != "" || c.DedicatedHost != "192.0.2.20" ||
		!slices.Equal(c.DedicatedHostKeyFingerprints, accountKeys) || len(c.HostKeyFingerprints) != 1 {
		t.Fatalf("credentials = %+v", c)
	}
	mails := f.emailsTo(outbox.EmailSFTPEnabled, uma.Email)
	last := mails[len(mails)-1].Data
	if len(mails) != 2 || last["CustomLogin"] != "backup" || last["DedicatedHost"] != "192.0.2.20" ||
		len(last["HostKeys"].([]any)) != 1+len(accountKeys) {
		t.Errorf("credentials emails: %+v", mails)
	}

	// The rules, uniqueness (case-insensitive) and who may do it.
	f.wantCode(set(f.owner, vic.ID, "k7m2-p9xd"), tenant.EInvalid, "an ID-shaped login")
	f.wantCode(set(f.owner, vic.ID, "BACKUP"), tenant.EConflict, "uma's login for vic")
	f.wantCode(set(f.owner, never.ID, "never"), tenant.EConflict, "a user SFTP was never turned on for")
	f.wantCode(set(uma, uma.ID, "me"), tenant.EForbidden, "a plain user for themselves")
	_, otherOwner := f.newAccount("Beta", "bob@beta.test")
	f.wantCode(set(otherOwner, uma.ID, "stolen"), tenant.ENotFound, "another account's owner")
	if err := set(admin, admin.ID, "ada"); err != nil {
		t.Errorf("an admin for themselves: %v", err)
	}
	// Setting the same login again changes nothing and sends nothing.
	if err := set(f.owner, uma.ID, "backup"); err != nil || len(f.emailsTo(outbox.EmailSFTPEnabled, uma.Email)) != 2 {
		t.Errorf("setting the same login: %v, %d emails", err, len(f.emailsTo(outbox.EmailSFTPEnabled, uma.Email)))
	}

	// Through createUser and updateUser: one credentials email naming it.
	wes, err := f.svc.People.CreateUser(f.ownerCtx, people.CreateUserInput{Email: "wes@acme.test", Name: "Wes", SFTPEnabled: true, CustomSFTPLogin: "wes"})
	if err != nil {
		t.Fatal(err)
	}
	if mails := f.emailsTo(outbox.EmailSFTPEnabled, wes.Email); len(mails) != 1 || mails[0].Data["CustomLogin"] != "wes" {
		t.Errorf("createUser's credentials emails: %+v", mails)
	}
	_, err = f.svc.People.CreateUser(f.ownerCtx, people.CreateUserInput{Email: "xan@acme.test", Name: "Xan", CustomSFTPLogin: "xan"})
	f.wantCode(err, tenant.EConflict, "a custom login without SFTP")
	if tenant.ErrorField(err) != "customSftpLogin" {
		t.Errorf("field %q", tenant.ErrorField(err))
	}
	empty := ""
	if _, err := f.svc.People.UpdateUser(f.ownerCtx, people.UpdateUserInput{ID: wes.ID, CustomSFTPLogin: &empty}); err != nil {
		t.Fatal(err)
	}
	if c := creds(wes); c.CustomLogin != "" || c.CustomLoginActive() || c.CustomLoginNote() != "" {
		t.Errorf("after removing: %+v", c)
	}
	on, login := true, "never"
	if _, err := f.svc.People.UpdateUser(f.ownerCtx, people.UpdateUserInput{ID: never.ID, SFTPEnabled: &on, CustomSFTPLogin: &login}); err != nil {
		t.Fatal(err)
	}
	if mails := f.emailsTo(outbox.EmailSFTPEnabled, never.Email); len(mails) != 1 || mails[0].Data["CustomLogin"] != "never" {
		t.Errorf("updateUser turning SFTP on with a login: %+v", mails)
	}
	if _, err := f.svc.People.UpdateUser(f.as(vic), people.UpdateUserInput{ID: vic.ID, CustomSFTPLogin: &login}); tenant.ErrorCode(err) != tenant.EForbidden {
		t.Errorf("a plain user sets their own through updateUser: %v", err)
	}

	// A deleted user keeps theirs, and no one else may take it.
	if _, err := f.svc.People.DeleteUser(f.ownerCtx, uma.ID, false); err != nil {
		t.Fatal(err)
	}
	if c := creds(uma); c.CustomLogin != "backup" {
		t.Errorf("deleted user's credentials: %+v", c)
	}
	f.wantCode(set(f.owner, vic.ID, "backup"), tenant.EConflict, "a deleted user's login")
	f.wantCode(set(f.owner, uma.ID, "other"), tenant.EConflict, "changing a deleted user's login")

	// Released: kept, inactive, with a note; provisioned again: active.
	if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, f.account.ID); err != nil {
		t.Fatal(err)
	}
	c = creds(never)
	if c.CustomLogin != "never" || c.CustomLoginActive() || !strings.Contains(c.CustomLoginNote(), "released") ||
		c.DedicatedHost != "" || len(c.DedicatedHostKeyFingerprints) != 0 {
		t.Errorf("after the release: %+v", c)
	}
	f.wantCode(set(f.owner, vic.ID, "vic"), tenant.EConflict, "a new login without a dedicated IP")
	if err := set(f.owner, never.ID, ""); err != nil {
		t.Errorf("removing a kept login after the release: %v", err)
	}
	if _, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, f.account.ID, ""); err != nil {
		t.Fatal(err)
	}
	if c := creds(admin); c.CustomLogin != "ada" || !c.CustomLoginActive() {
		t.Errorf("after provisioning again: %+v", c)
	}
}
