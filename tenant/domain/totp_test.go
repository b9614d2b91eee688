package domain_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
)

// loggedIn logs in with a second factor and returns the context of the token
// as a request would carry it (Authenticate), and whether it is enrol-only.
func (f *directoryFixture) loggedIn(email, password, code string) (context.Context, error) {
	f.t.Helper()
	res, err := f.svc.People.LoginWithCode(context.Background(), email, password, code, clientAddr)
	if err != nil {
		return nil, err
	}
	p, err := f.svc.People.Authenticate(context.Background(), res.Token, netip.Addr{})
	if err != nil {
		f.t.Fatal(err)
	}
	tokens.Store(p.TokenID, res.Token)
	if p.EnrolOnly != res.Principal.EnrolOnly {
		f.t.Fatalf("login says enrol-only %v, Authenticate %v", res.Principal.EnrolOnly, p.EnrolOnly)
	}
	return tenant.WithPrincipal(context.Background(), p), nil
}

func (f *directoryFixture) mustLogIn(email, password, code string) context.Context {
	f.t.Helper()
	ctx, err := f.loggedIn(email, password, code)
	if err != nil {
		f.t.Fatalf("login %s with code %q: %v", email, code, err)
	}
	return ctx
}

// enrol turns two-factor on for ctx's principal at the fixture's clock, with
// their current password ("" for the enrol-only token of a login), and
// returns the secret and the recovery codes.
func (f *directoryFixture) enrol(ctx context.Context, password string) (string, []string) {
	f.t.Helper()
	e, err := f.svc.People.StartTotpEnrolment(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	code, err := totp.GenerateCode(e.Secret, f.svc.Time())
	if err != nil {
		f.t.Fatal(err)
	}
	codes, err := f.svc.People.ConfirmTotpEnrolment(ctx, code, password)
	if err != nil {
		f.t.Fatal(err)
	}
	return e.Secret, codes
}

func (f *directoryFixture) code(secret string) string {
	f.t.Helper()
	c, err := totp.GenerateCode(secret, f.svc.Time())
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func wantTotpErr(t *testing.T, err error, code tenant.Code, field, what string) {
	t.Helper()
	if tenant.ErrorCode(err) != code || tenant.ErrorField(err) != field {
		t.Fatalf("%s: %v, want %s on %q", what, err, code, field)
	}
}

// Enrolment, confirmation, login with a code at a fixed clock, wrong and
// missing codes, replay, recovery codes (once each) and disabling.
func TestTotpEnrolAndLogin(t *testing.T) {
	f := newDirectoryFixture(t)
	f.mu.Lock()
	f.now = time.Date(2026, 3, 1, 10, 0, 7, 0, time.UTC)
	f.mu.Unlock()
	u, _ := f.sftpUser("tia@acme.test")
	ctx := f.mustLogIn(u.Email, sftpPassword, "")

	e, err := f.svc.People.StartTotpEnrolment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URL, "otpauth://totp/Skiff:tia@acme.test?") || !strings.Contains(e.URL, "secret="+e.Secret) {
		t.Errorf("enrolment URL %q", e.URL)
	}
	good := f.code(e.Secret)
	wrong := "000000"
	if good == wrong {
		wrong = "111111"
	}
	_, err = f.svc.People.ConfirmTotpEnrolment(ctx, wrong, sftpPassword)
	wantTotpErr(t, err, tenant.EInvalid, "code", "confirm with a wrong code")
	if on, _ := f.svc.People.TotpEnabled(ctx); on {
		t.Fatal("two-factor on after a wrong confirmation")
	}
	codes, err := f.svc.People.ConfirmTotpEnrolment(ctx, good, sftpPassword)
	if err != nil || len(codes) != 10 {
		t.Fatalf("confirm: %v, %v", codes, err)
	}
	var stored []string
	if err := f.svc.DB.X.Select(&stored, `SELECT unnest(recovery_hashes) FROM totp WHERE user_id = $1`, u.ID); err != nil || len(stored) != 10 {
		t.Fatalf("stored recovery codes: %v, %v", stored, err)
	}
	for _, h := range stored {
		for _, c := range codes {
			if strings.Contains(h, c) || strings.Contains(h, strings.ReplaceAll(c, "-", "")) {
				t.Fatalf("recovery code %s stored in the clear", c)
			}
		}
	}
	if _, err := f.svc.People.StartTotpEnrolment(ctx); tenant.ErrorCode(err) != tenant.EConflict {
		t.Errorf("a second enrolment while on: %v", err)
	}

	// The password alone is not enough; the refusal is counted.
	_, err = f.loggedIn(u.Email, sftpPassword, "")
	if !errors.Is(err, people.ErrTotpRequired) {
		t.Fatalf("login without a code: %v, want TOTP required", err)
	}
	var failures int
	if err := f.svc.DB.X.Get(&failures, `SELECT failures FROM auth_failures WHERE key = 'email:tia@acme.test'`); err != nil || failures != 1 {
		t.Errorf("the refused login counted %d (%v), want 1", failures, err)
	}
	_, err = f.loggedIn(u.Email, sftpPassword, wrong)
	wantTotpErr(t, err, tenant.EUnauthenticated, "totpCode", "login with a wrong code")
	_, err = f.loggedIn(u.Email, "not the password", good)
	wantTotpErr(t, err, tenant.EUnauthenticated, "password", "a good code with a wrong password")
	// The code that confirmed the enrolment is used up: no replay in its step.
	_, err = f.loggedIn(u.Email, sftpPassword, good)
	wantTotpErr(t, err, tenant.EUnauthenticated, "totpCode", "replaying the confirmation's code")

	f.advance(30 * time.Second)
	next := f.code(e.Secret)
	f.mustLogIn(u.Email, sftpPassword, next)
	_, err = f.loggedIn(u.Email, sftpPassword, next)
	wantTotpErr(t, err, tenant.EUnauthenticated, "totpCode", "the same code twice")
	// One step of drift either way is accepted, more is not.
	f.advance(30 * time.Second)
	prev := f.code(e.Secret)
	f.advance(30 * time.Second)
	f.mustLogIn(u.Email, sftpPassword, prev)
	f.advance(30 * time.Second)
	old := f.code(e.Secret)
	f.advance(60 * time.Second)
	_, err = f.loggedIn(u.Email, sftpPassword, old)
	wantTotpErr(t, err, tenant.EUnauthenticated, "totpCode", "a code two steps old")

	// A recovery code works once, whatever its case.
	f.mustLogIn(u.Email, sftpPassword, strings.ToUpper(codes[0]))
	_, err = f.loggedIn(u.Email, sftpPassword, codes[0])
	wantTotpErr(t, err, tenant.EUnauthenticated, "totpCode", "a recovery code used twice")

	// Disabling needs the password and a code.
	err = f.svc.People.DisableTotp(ctx, "not the password", codes[1])
	wantTotpErr(t, err, tenant.EInvalid, "password", "disable with a wrong password")
	err = f.svc.People.DisableTotp(ctx, sftpPassword, codes[0])
	wantTotpErr(t, err, tenant.EInvalid, "code", "disable with a used recovery code")
	f.advance(30 * time.Second)
	if err := f.svc.People.DisableTotp(ctx, sftpPassword, f.code(e.Secret)); err != nil {
		t.Fatal(err)
	}
	if c := f.mustLogIn(u.Email, sftpPassword, ""); tenant.PrincipalFrom(c).EnrolOnly {
		t.Error("a user's login is enrol-only after disabling optional two-factor")
	}
	var kinds []string
	if err := f.svc.DB.X.Select(&kinds, `SELECT kind FROM audit_events WHERE kind LIKE 'user.totp%' ORDER BY kind DESC`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(kinds, ",") != "user.totp_enabled,user.totp_disabled" {
		t.Errorf("audit: %v", kinds)
	}
}

// Staff must use two-factor: without it their token may only enrol, and it
// becomes a full token once the enrolment is confirmed.
func TestTotpRequiredOfStaff(t *testing.T) {
	f := newDirectoryFixture(t)
	ctx := f.mustLogIn("support@skiff.test", "staff password 123", "")
	if !tenant.PrincipalFrom(ctx).EnrolOnly {
		t.Fatal("staff without two-factor got a full token")
	}
	secret, _ := f.enrol(ctx, "")
	// The same token is a full one from now on.
	if p, err := f.svc.People.Authenticate(context.Background(), tokenOf(ctx), netip.Addr{}); err != nil || p.EnrolOnly {
		t.Errorf("the enrolled staff member's token: %+v, %v", p, err)
	}
	f.advance(30 * time.Second)
	again := f.mustLogIn("support@skiff.test", "staff password 123", f.code(secret))
	if tenant.PrincipalFrom(again).EnrolOnly {
		t.Error("staff with two-factor on got an enrol-only token")
	}
	if _, err := f.loggedIn("support@skiff.test", "staff password 123", ""); !errors.Is(err, people.ErrTotpRequired) {
		t.Errorf("staff login without a code: %v", err)
	}
	// Turning it on and off is in the staff audit trail, as a user's is in
	// their account's.
	f.advance(30 * time.Second)
	if err := f.svc.People.DisableTotp(again, "staff password 123", f.code(secret)); err != nil {
		t.Fatal(err)
	}
	var events []struct {
		Kind     string `db:"kind"`
		ActorID  string `db:"actor_id"`
		TargetID string `db:"target_id"`
	}
	if err := f.svc.DB.X.Select(&events, `SELECT kind, actor_id, target_id FROM staff_audit_events
		WHERE kind LIKE 'staff.totp%' ORDER BY at, id`); err != nil {
		t.Fatal(err)
	}
	me := tenant.PrincipalFrom(again).ID
	if len(events) != 2 || events[0].Kind != "staff.totp_enabled" || events[1].Kind != "staff.totp_disabled" ||
		events[0].TargetID != me || events[1].ActorID != me {
		t.Errorf("staff audit trail of two-factor: %+v, want staff.totp_enabled then staff.totp_disabled by and of %s", events, me)
	}
}

// requireTotpForAdmins: owners only, an owner must have it on first; then
// owners and administrators without it get enrol-only tokens, users do not.
func TestRequireTotpForAdmins(t *testing.T) {
	f := newDirectoryFixture(t)
	admin, _ := f.sftpUser("ada@acme.test")
	if _, err := f.svc.DB.X.Exec(`UPDATE users SET role = 'ADMIN' WHERE id = $1`, admin.ID); err != nil {
		t.Fatal(err)
	}
	user, _ := f.sftpUser("ulf@acme.test")
	if _, err := f.svc.DB.X.Exec(`UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE id = $2) WHERE id = $1`, f.owner.ID, user.ID); err != nil {
		t.Fatal(err)
	}
	owner := f.mustLogIn(f.owner.Email, sftpPassword, "")
	adminCtx := f.mustLogIn(admin.Email, sftpPassword, "")
	if tenant.PrincipalFrom(adminCtx).EnrolOnly || tenant.PrincipalFrom(owner).EnrolOnly {
		t.Fatal("enrol-only tokens before the account requires two-factor")
	}

	if _, err := f.svc.People.SetRequireTotpForAdmins(adminCtx, true); tenant.ErrorCode(err) != tenant.EForbidden {
		t.Errorf("an administrator set it: %v", err)
	}
	if _, err := f.svc.People.SetRequireTotpForAdmins(owner, true); tenant.ErrorCode(err) != tenant.EConflict {
		t.Errorf("an owner without two-factor required it: %v", err)
	}
	f.enrol(owner, sftpPassword)
	a, err := f.svc.People.SetRequireTotpForAdmins(owner, true)
	if err != nil || !a.RequireTotpForAdmins {
		t.Fatalf("set: %+v, %v", a, err)
	}
	if a, err := f.svc.Accounts.Account(f.staff, f.account.ID); err != nil || !a.RequireTotpForAdmins {
		t.Errorf("the account reads %+v, %v", a, err)
	}
	// The administrator's existing token is now enrol-only too.
	if p, err := f.svc.People.Authenticate(context.Background(), tokenOf(adminCtx), netip.Addr{}); err != nil || !p.EnrolOnly {
		t.Errorf("the administrator's token: %+v, %v; want enrol-only", p, err)
	}
	if c := f.mustLogIn(user.Email, sftpPassword, ""); tenant.PrincipalFrom(c).EnrolOnly {
		t.Error("a plain user's token is enrol-only")
	}
	adminNow := f.mustLogIn(admin.Email, sftpPassword, "")
	if !tenant.PrincipalFrom(adminNow).EnrolOnly {
		t.Error("an administrator without two-factor got a full token")
	}
	f.enrol(adminNow, "")
	if p, err := f.svc.People.Authenticate(context.Background(), tokenOf(adminCtx), netip.Addr{}); err != nil || p.EnrolOnly {
		t.Errorf("the administrator's token after enrolling: %+v, %v", p, err)
	}
	// The owner now needs a code; turning the setting off does not change that (it is on for them).
	if _, err := f.loggedIn(f.owner.Email, sftpPassword, ""); !errors.Is(err, people.ErrTotpRequired) {
		t.Errorf("owner login without a code: %v", err)
	}
	if _, err := f.svc.People.SetRequireTotpForAdmins(owner, false); err != nil {
		t.Fatal(err)
	}
}

// tokens remembers the bearer token behind each logged-in context.
var tokens sync.Map

func tokenOf(ctx context.Context) string {
	t, _ := tokens.Load(tenant.PrincipalFrom(ctx).TokenID)
	return t.(string)
}
