package domain_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
)

// ownSFTP is the OwnSFTP part of a module email as the outbox holds it (nil
// when the email carries none).
func ownSFTP(e outboxEmail) map[string]any {
	m, _ := e.Data["OwnSFTP"].(map[string]any)
	return m
}

// onlyEmail returns the one email of kind to whom, failing otherwise.
func (f *moduleFixture) onlyEmail(kind outbox.EmailKind, to string) outboxEmail {
	f.t.Helper()
	got := f.emailsTo(kind, to)
	if len(got) != 1 {
		f.t.Fatalf("%s emails to %s: %d, want 1", kind, to, len(got))
	}
	return got[0]
}

// wantOwnSFTP checks that a module email gives u their login and the host key.
func (f *moduleFixture) wantOwnSFTP(e outboxEmail, u *tenant.User) {
	f.t.Helper()
	creds, err := f.svc.SFTP.SFTPCredentials(f.as(u), u.ID)
	if err != nil || creds == nil {
		f.t.Fatalf("%s's credentials: %+v, %v", u.Email, creds, err)
	}
	own := ownSFTP(e)
	if own == nil || own["Login"] != creds.Login || own["Host"] != "sftp.skiff.test" || own["Port"] != float64(2022) {
		f.t.Fatalf("module email to %s = %s, want their login %s on sftp.skiff.test:2022", u.Email, e.Raw, creds.Login)
	}
	if !strings.Contains(e.Raw, "SHA256:testhostkeyfingerprint") {
		f.t.Fatalf("module email to %s has no host-key fingerprint: %s", u.Email, e.Raw)
	}
	if e.Data["NoLicenceForOwner"] == true {
		f.t.Fatalf("module email to %s says no licence was free: %s", u.Email, e.Raw)
	}
}

func (f *moduleFixture) licences() sftpaccess.Licences {
	f.t.Helper()
	l, err := f.svc.SFTP.SFTPLicences(f.staff, f.account.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return *l
}

func (f *moduleFixture) sftpEnabledEvents() int {
	f.t.Helper()
	ev, err := f.svc.Audit.Events(f.staff, f.account.ID, audit.Filter{Kinds: []string{"sftp.enabled"}}, tenant.Order{}, tenant.Page{})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(ev.Items)
}

func TestTrialStartTurnsOwnersSFTPOn(t *testing.T) {
	f := newModuleFixture(t)
	coOwner := f.newUser("otto@acme.test", tenant.RoleOwner)
	f.startTrial()

	// The owner who started it has SFTP, with one licence, and one email
	// with their login and the host keys: no separate credentials email.
	if l := f.licences(); l != (sftpaccess.Licences{Purchased: 5, Used: 1, Available: 4}) {
		t.Fatalf("licences after the trial's start = %+v, want 1 of 5 used", l)
	}
	f.wantOwnSFTP(f.onlyEmail(outbox.EmailModuleTrialStarted, f.owner.Email), f.owner)
	if got := f.emails(outbox.EmailSFTPEnabled); len(got) != 0 {
		t.Fatalf("%d sftp_enabled emails besides the module's", len(got))
	}
	// The other owner hears of the trial, without anyone's credentials.
	if e := f.onlyEmail(outbox.EmailModuleTrialStarted, coOwner.Email); ownSFTP(e) != nil || strings.Contains(e.Raw, "Login") {
		t.Fatalf("trial email to the other owner carries credentials: %s", e.Raw)
	}
	if c, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, coOwner.ID); err != nil || c != nil {
		t.Fatalf("the other owner got credentials: %+v, %v", c, err)
	}
	before, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Activation after the trial re-issues and resends nothing, even to an
	// owner who turned their SFTP off in the meantime.
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, f.owner.ID, false); err != nil {
		t.Fatal(err)
	}
	f.advance(20 * 24 * time.Hour)
	f.activate(10)
	for _, o := range []*tenant.User{f.owner, coOwner} {
		if e := f.onlyEmail(outbox.EmailModuleActivated, o.Email); ownSFTP(e) != nil || e.Data["NoLicenceForOwner"] == true {
			t.Fatalf("activation after the trial told %s of their SFTP: %s", o.Email, e.Raw)
		}
	}
	if l := f.licences(); l.Used != 0 {
		t.Fatalf("activation after the trial turned SFTP on again: %+v", l)
	}
	if n := f.sftpEnabledEvents(); n != 1 {
		t.Fatalf("%d sftp.enabled events, want the trial's 1", n)
	}
	f.enable(f.owner)
	if after, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, f.owner.ID); err != nil || after.Login != before.Login {
		t.Fatalf("the owner's login changed: %+v -> %+v (%v)", before, after, err)
	}
}

func TestFirstActivationTurnsRequestingOwnersSFTPOn(t *testing.T) {
	f := newModuleFixture(t)
	asker := f.newUser("otto@acme.test", tenant.RoleOwner)
	admin := f.newUser("ada@acme.test", tenant.RoleAdmin)
	for _, u := range []*tenant.User{admin, asker} {
		if _, err := f.svc.SFTP.RequestSFTPModule(f.as(u), "we need SFTP"); err != nil {
			t.Fatal(err)
		}
	}
	c := f.activate(5)
	if c.Licences != (sftpaccess.Licences{Purchased: 5, Used: 1, Available: 4}) {
		t.Fatalf("licences after the first activation = %+v, want the asking owner's 1 used", c.Licences)
	}
	f.wantOwnSFTP(f.onlyEmail(outbox.EmailModuleActivated, asker.Email), asker)
	// The owner who did not ask, and the administrator who did, get nothing of it.
	if e := f.onlyEmail(outbox.EmailModuleActivated, f.owner.Email); ownSFTP(e) != nil {
		t.Fatalf("activation email to the owner who did not ask carries credentials: %s", e.Raw)
	}
	for _, u := range []*tenant.User{f.owner, admin} {
		if c, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, u.ID); err != nil || c != nil {
			t.Fatalf("%s got credentials: %+v, %v", u.Email, c, err)
		}
	}

	// Suspended and activated again: nothing is re-issued or resent.
	if _, err := f.svc.SFTP.SuspendSFTPModule(f.staff, f.account.ID); err != nil {
		t.Fatal(err)
	}
	f.activate(5)
	for _, e := range f.emails(outbox.EmailModuleActivated)[2:] {
		if ownSFTP(e) != nil {
			t.Fatalf("the second activation resent credentials: %s", e.Raw)
		}
	}
	if n := f.sftpEnabledEvents(); n != 1 || f.licences().Used != 1 {
		t.Fatalf("after the second activation: %d sftp.enabled events, %d licences used; want 1 and 1", n, f.licences().Used)
	}
}

func TestFirstActivationUnaskedTurnsFirstOwnersSFTPOn(t *testing.T) {
	f := newModuleFixture(t)
	f.advance(time.Minute) // the fixture's clock stands still
	later := f.newUser("otto@acme.test", tenant.RoleOwner)
	f.activate(5)
	f.wantOwnSFTP(f.onlyEmail(outbox.EmailModuleActivated, f.owner.Email), f.owner)
	if e := f.onlyEmail(outbox.EmailModuleActivated, later.Email); ownSFTP(e) != nil {
		t.Fatalf("activation email to the later owner carries credentials: %s", e.Raw)
	}
}

func TestModuleStartsWithNoLicenceForOwner(t *testing.T) {
	f := newModuleFixture(t)
	c := f.activate(0)
	if got := f.svc.SFTP.SFTPModuleStatus(c.Account); got != tenant.ModuleActive || c.Licences.Used != 0 {
		t.Fatalf("activation with no licence = %s, %+v", got, c.Licences)
	}
	e := f.onlyEmail(outbox.EmailModuleActivated, f.owner.Email)
	if ownSFTP(e) != nil || e.Data["NoLicenceForOwner"] != true {
		t.Fatalf("activation email with no licence free = %s, want NoLicenceForOwner", e.Raw)
	}
	if cr, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, f.owner.ID); err != nil || cr != nil {
		t.Fatalf("credentials issued with no licence: %+v, %v", cr, err)
	}
	if n := f.sftpEnabledEvents(); n != 0 {
		t.Fatalf("%d sftp.enabled events with no licence", n)
	}
}

// holdOwnerRow locks the owner's user row in a transaction of its own, as
// setSftpAccess on them does before it locks the account, runs start in the
// background until it waits on a lock (in this test's database: other
// tests' waits do not count), then locks the account as
// setSftpAccess would next. Taking the account first, start would deadlock
// with it; either of the two would then fail.
func (f *moduleFixture) holdOwnerRow(start func() error) {
	f.t.Helper()
	ctx := context.Background()
	tx, err := f.svc.DB.X.BeginTxx(ctx, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, f.owner.ID); err != nil {
		f.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- start() }()
	for waiting := 0; waiting == 0; {
		if err := f.svc.DB.X.GetContext(ctx, &waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			f.t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, f.account.ID); err != nil {
		f.t.Fatalf("setSftpAccess's account lock after the owner's: %v", err)
	}
	if err := tx.Commit(); err != nil {
		f.t.Fatal(err)
	}
	if err := <-done; err != nil {
		f.t.Fatalf("module start next to a setSftpAccess on the owner: %v", err)
	}
}

func TestModuleStartLocksOwnerBeforeAccount(t *testing.T) {
	t.Run("trial", func(t *testing.T) {
		f := newModuleFixture(t)
		f.holdOwnerRow(func() error { _, err := f.svc.SFTP.StartSFTPTrial(f.ownerCtx); return err })
		if f.licences().Used != 1 {
			t.Fatal("the owner has no SFTP after the trial's start")
		}
	})
	t.Run("activation", func(t *testing.T) {
		f := newModuleFixture(t)
		f.holdOwnerRow(func() error { _, err := f.svc.SFTP.ActivateSFTPModule(f.staff, f.account.ID, 3); return err })
		if f.licences().Used != 1 {
			t.Fatal("the owner has no SFTP after the first activation")
		}
	})
}
