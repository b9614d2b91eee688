package domain_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/people"
)

// latestToken returns the one-time token of the newest email of kind to addr.
func (f *moduleFixture) latestToken(kind outbox.EmailKind, addr string) string {
	f.t.Helper()
	mails := f.emailsTo(kind, addr)
	if len(mails) == 0 {
		f.t.Fatalf("no %s email to %s", kind, addr)
	}
	token, _ := mails[len(mails)-1].Data["Token"].(string)
	if len(token) != people.OneTimeTokenLen {
		f.t.Fatalf("%s email to %s carries token %q", kind, addr, token)
	}
	return token
}

// wantRefusal fails unless err is the token user error whose message contains want.
func (f *moduleFixture) wantRefusal(err error, want string) {
	f.t.Helper()
	f.wantCode(err, tenant.EInvalid, "redeem")
	if tenant.ErrorField(err) != "token" || !strings.Contains(tenant.ErrorMessage(err), want) {
		f.t.Fatalf("refusal = %q on field %q, want it to say %q", tenant.ErrorMessage(err), tenant.ErrorField(err), want)
	}
}

const goodPassword = "a long enough passphrase"

// umaWithPassword creates the user uma@acme.test with the password "the
// first passphrase" (no invitation).
func (f *moduleFixture) umaWithPassword() *tenant.User {
	f.t.Helper()
	u, err := f.svc.People.CreateUser(f.ownerCtx, people.CreateUserInput{Email: "uma@acme.test", Name: "Uma", Password: "the first passphrase"})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func TestInvitation(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	if err := f.svc.People.ResendInvitation(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	mail := f.emailsTo(outbox.EmailInvitation, u.Email)
	last := mail[len(mail)-1].Data
	if last["AccountName"] != "Acme" || last["InvitedBy"] != f.owner.Name || last["InviteeName"] != u.Name {
		t.Fatalf("invitation email = %+v", last)
	}
	token := f.latestToken(outbox.EmailInvitation, u.Email)

	_, err := f.svc.People.AcceptInvitation(ctx, token, "short")
	f.wantCode(err, tenant.EInvalid, "short password")
	if tenant.ErrorField(err) != "password" {
		t.Fatalf("short password error names field %q", tenant.ErrorField(err))
	}
	res, err := f.svc.People.AcceptInvitation(ctx, token, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if res.Principal.ID != u.ID || res.Principal.AccountID != f.account.ID {
		t.Fatalf("accepting logged in %+v, want %s", res.Principal, u.ID)
	}
	if p, err := f.svc.People.Authenticate(ctx, res.Token, netip.Addr{}); err != nil || p.ID != u.ID {
		t.Fatalf("the token from accepting: %+v, %v", p, err)
	}
	if _, err := f.svc.People.Login(ctx, u.Email, goodPassword, netip.Addr{}); err != nil {
		t.Fatalf("login with the chosen password: %v", err)
	}

	// A link works once; a user with a password gets no new invitation.
	_, err = f.svc.People.AcceptInvitation(ctx, token, "another long passphrase")
	f.wantRefusal(err, "already been accepted")
	err = f.svc.People.ResendInvitation(f.ownerCtx, u.ID)
	f.wantCode(err, tenant.EConflict, "invite a user with a password")

	_, err = f.svc.People.AcceptInvitation(ctx, strings.Repeat("A", people.OneTimeTokenLen), goodPassword)
	f.wantRefusal(err, "not valid")
	_, err = f.svc.People.AcceptInvitation(ctx, "garbage", goodPassword)
	f.wantRefusal(err, "not valid")

	events, err := f.svc.Audit.Events(f.ownerCtx, f.account.ID, audit.Filter{Kinds: []string{"user.invited", "user.invitation_accepted"}, UserID: u.ID}, tenant.Order{}, tenant.Page{})
	if err != nil || len(events.Items) < 2 || events.Items[0].Kind != "user.invitation_accepted" || events.Items[0].ActorKind != "USER" {
		t.Fatalf("invitation audit events = %+v, %v", events, err)
	}
}

func TestInvitationExpiresAndIsReplaced(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	plain := f.newUser("pat@acme.test", tenant.RoleUser)

	err := f.svc.People.ResendInvitation(f.as(plain), u.ID)
	f.wantCode(err, tenant.EForbidden, "plain user invites")
	if err := f.svc.People.ResendInvitation(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	old := f.latestToken(outbox.EmailInvitation, u.Email)
	if err := f.svc.People.ResendInvitation(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	fresh := f.latestToken(outbox.EmailInvitation, u.Email)
	_, err = f.svc.People.AcceptInvitation(ctx, old, goodPassword)
	f.wantRefusal(err, "no longer valid")

	f.advance(people.InvitationTTL)
	_, err = f.svc.People.AcceptInvitation(ctx, fresh, goodPassword)
	f.wantRefusal(err, "expired")
	if _, err := f.svc.People.Login(ctx, u.Email, goodPassword, netip.Addr{}); tenant.ErrorCode(err) != tenant.EUnauthenticated {
		t.Fatalf("a refused invitation set a password: login gave %v", err)
	}

	// An invitation for a user deleted meanwhile is not valid.
	if err := f.svc.People.ResendInvitation(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	token := f.latestToken(outbox.EmailInvitation, u.Email)
	if _, err := f.svc.People.DeleteUser(f.ownerCtx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.People.AcceptInvitation(ctx, token, goodPassword)
	f.wantRefusal(err, "not valid")
}

func TestPasswordReset(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.umaWithPassword()
	session, err := f.svc.People.Login(ctx, u.Email, "the first passphrase", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}

	// Known and unknown addresses get the same answer; only the known one gets mail.
	if err := f.svc.People.RequestPasswordReset(ctx, "UMA@acme.test"); err != nil {
		t.Fatalf("reset for a known address: %v", err)
	}
	if err := f.svc.People.RequestPasswordReset(ctx, "nobody@acme.test"); err != nil {
		t.Fatalf("reset for an unknown address: %v", err)
	}
	if mails := f.emails(outbox.EmailPasswordReset); len(mails) != 1 || mails[0].To != u.Email {
		t.Fatalf("reset emails = %+v, want one to %s", mails, u.Email)
	}
	err = f.svc.People.RequestPasswordReset(ctx, "not an address")
	f.wantCode(err, tenant.EInvalid, "malformed address")

	first := f.latestToken(outbox.EmailPasswordReset, u.Email)
	if err := f.svc.People.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	second := f.latestToken(outbox.EmailPasswordReset, u.Email)

	err = f.svc.People.ResetPassword(ctx, second, "short")
	f.wantCode(err, tenant.EInvalid, "short password")
	if err := f.svc.People.ResetPassword(ctx, second, "the second passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.People.Login(ctx, u.Email, "the second passphrase", netip.Addr{}); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if _, err := f.svc.People.Login(ctx, u.Email, "the first passphrase", netip.Addr{}); tenant.ErrorCode(err) != tenant.EUnauthenticated {
		t.Fatalf("login with the old password: %v", err)
	}
	if _, err := f.svc.People.Authenticate(ctx, session.Token, netip.Addr{}); tenant.ErrorCode(err) != tenant.EUnauthenticated {
		t.Fatalf("a session from before the reset still works: %v", err)
	}
	if got := f.sessions.ended(); len(got) != 1 || got[0] != u.ID {
		t.Fatalf("SFTP sessions ended by the reset: %v", got)
	}

	// Each link works once, and using one spends the others.
	err = f.svc.People.ResetPassword(ctx, second, "the third passphrase")
	f.wantRefusal(err, "already been used")
	err = f.svc.People.ResetPassword(ctx, first, "the third passphrase")
	f.wantRefusal(err, "no longer valid")
}

func TestPasswordResetExpires(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	if err := f.svc.People.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	token := f.latestToken(outbox.EmailPasswordReset, u.Email)
	f.advance(people.PasswordResetTTL)
	err := f.svc.People.ResetPassword(ctx, token, goodPassword)
	f.wantRefusal(err, "expired")
}

func TestPasswordResetRateLimitIsTheSameForEveryAddress(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", tenant.RoleUser)

	var refusals []string
	for _, addr := range []string{u.Email, "nobody@acme.test"} {
		for range people.ResetRequestsPerWindow {
			if err := f.svc.People.RequestPasswordReset(ctx, addr); err != nil {
				t.Fatalf("request for %s within the limit: %v", addr, err)
			}
		}
		err := f.svc.People.RequestPasswordReset(ctx, addr)
		f.wantCode(err, tenant.ELimit, "request over the limit for "+addr)
		refusals = append(refusals, tenant.ErrorMessage(err))
	}
	if refusals[0] != refusals[1] {
		t.Fatalf("the limit tells addresses apart: %q vs %q", refusals[0], refusals[1])
	}
	if got := len(f.emails(outbox.EmailPasswordReset)); got != people.ResetRequestsPerWindow {
		t.Fatalf("%d reset emails, want %d", got, people.ResetRequestsPerWindow)
	}

	f.advance(people.ResetWindow)
	if err := f.svc.People.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatalf("request after the window: %v", err)
	}
	n, err := f.svc.People.PurgeExpiredTokens(tenant.SystemContext(ctx))
	if err != nil || n != 0 {
		t.Fatalf("purge right after: %d, %v", n, err)
	}
	f.advance(people.ExpiredTokenRetention + 2*time.Hour)
	if n, err := f.svc.People.PurgeExpiredTokens(tenant.SystemContext(ctx)); err != nil || n != people.ResetRequestsPerWindow+1 {
		t.Fatalf("purge of old tokens: %d, %v; want %d", n, err, people.ResetRequestsPerWindow+1)
	}
	_, err = f.svc.People.PurgeExpiredTokens(f.ownerCtx)
	f.wantCode(err, tenant.EForbidden, "owner purges")
}

// Requests made by a stranger to use up an address's limit lock its owner
// out of nothing: the refusal says to use the newest link, gives the time
// left in the hour, and that link still resets the password.
func TestPasswordResetLimitLocksNobodyOut(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", tenant.RoleUser)
	for range people.ResetRequestsPerWindow { // the stranger, 10 minutes apart
		if err := f.svc.People.RequestPasswordReset(ctx, u.Email); err != nil {
			t.Fatal(err)
		}
		f.advance(10 * time.Minute)
	}
	newest := f.latestToken(outbox.EmailPasswordReset, u.Email)
	f.advance(20 * time.Minute) // 50 minutes into the hour, Uma asks
	err := f.svc.People.RequestPasswordReset(ctx, u.Email)
	f.wantCode(err, tenant.ELimit, "a request over the limit")
	var te *tenant.Error
	if !errors.As(err, &te) || te.RetryAfter != 10*time.Minute {
		t.Errorf("retry after %v; want the 10 minutes left in the hour", te.RetryAfter)
	}
	if msg := tenant.ErrorMessage(err); !strings.Contains(msg, "use the newest one") {
		t.Errorf("the refusal %q does not point to the links already sent", msg)
	}
	f.advance(10*time.Minute - time.Second) // the last second of the limit
	if err := f.svc.People.ResetPassword(ctx, newest, "uma's new passphrase"); err != nil {
		t.Fatalf("the newest link, while the limit holds: %v", err)
	}
	if _, err := f.svc.People.Login(ctx, u.Email, "uma's new passphrase", netip.Addr{}); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
}

// Links emailed to an address stop working when the user's email changes:
// an administrator who fixes a mistyped address, or a user who leaves an
// old mailbox behind, must not leave a way in to whoever reads the old one.
// A user still invited gets a new invitation at the new address.
func TestEmailChangeSpendsTheLinksSentToTheOldAddress(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme-typo.test", tenant.RoleUser)
	typoInvite := f.latestToken(outbox.EmailInvitation, "uma@acme-typo.test")
	email := "uma@acme.test"
	if _, err := f.svc.People.UpdateUser(f.ownerCtx, people.UpdateUserInput{ID: u.ID, Email: &email}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.People.AcceptInvitation(ctx, typoInvite, goodPassword)
	f.wantRefusal(err, "no longer valid")
	if _, err := f.svc.People.Login(ctx, email, goodPassword, netip.Addr{}); tenant.ErrorCode(err) != tenant.EUnauthenticated {
		t.Fatalf("the old address's invitation set a password: login gave %v", err)
	}
	if _, err := f.svc.People.AcceptInvitation(ctx, f.latestToken(outbox.EmailInvitation, email), goodPassword); err != nil {
		t.Fatalf("the invitation sent to the new address: %v", err)
	}

	// A reset link sent before the change no longer resets the password.
	if err := f.svc.People.RequestPasswordReset(ctx, email); err != nil {
		t.Fatal(err)
	}
	reset := f.latestToken(outbox.EmailPasswordReset, email)
	next := "uma@elsewhere.test"
	if _, err := f.svc.People.UpdateUser(f.ownerCtx, people.UpdateUserInput{ID: u.ID, Email: &next}); err != nil {
		t.Fatal(err)
	}
	err = f.svc.People.ResetPassword(ctx, reset, "a password someone else chose")
	f.wantRefusal(err, "no longer valid")
	if _, err := f.svc.People.Login(ctx, next, goodPassword, netip.Addr{}); err != nil {
		t.Fatalf("the user's own password after the refused reset: %v", err)
	}
	if n := len(f.emailsTo(outbox.EmailInvitation, next)); n != 0 {
		t.Fatalf("%d invitations to a user who has a password", n)
	}
}

// Changing one's password spends the reset links already sent: a link that
// someone else got hold of does not undo the change.
func TestPasswordChangeSpendsResetLinks(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.umaWithPassword()
	if err := f.svc.People.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	link := f.latestToken(outbox.EmailPasswordReset, u.Email)
	res, err := f.svc.People.Login(ctx, u.Email, "the first passphrase", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.People.ChangePassword(tenant.WithPrincipal(ctx, res.Principal), "the first passphrase", "the second passphrase"); err != nil {
		t.Fatal(err)
	}
	err = f.svc.People.ResetPassword(ctx, link, "a password someone else chose")
	f.wantRefusal(err, "no longer valid")
	if _, err := f.svc.People.Login(ctx, u.Email, "the second passphrase", netip.Addr{}); err != nil {
		t.Fatalf("the changed password after the refused reset: %v", err)
	}
}

// Deleting a user spends the links already emailed to them: restoring the
// user must not bring back an invitation or a password reset that has not
// expired yet (whoever reads the mailbox of someone who left must not get
// in once they are restored). An invited user is invited again at the
// restore.
func TestDeletingAUserSpendsTheirLinks(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	invited := f.newUser("ivy@acme.test", tenant.RoleUser)
	invite := f.latestToken(outbox.EmailInvitation, invited.Email)
	u := f.umaWithPassword()
	if err := f.svc.People.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	reset := f.latestToken(outbox.EmailPasswordReset, u.Email)
	for _, id := range []string{invited.ID, u.ID} {
		if _, err := f.svc.People.DeleteUser(f.ownerCtx, id, false); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.People.RestoreUser(f.ownerCtx, id); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.svc.People.AcceptInvitation(ctx, invite, goodPassword)
	f.wantRefusal(err, "this invitation link is no longer valid")
	err = f.svc.People.ResetPassword(ctx, reset, "a password someone else chose")
	f.wantRefusal(err, "this password reset link is no longer valid")
	if _, err := f.svc.People.Login(ctx, u.Email, "the first passphrase", netip.Addr{}); err != nil {
		t.Fatalf("the restored user's own password after the refused reset: %v", err)
	}
	// The restore sent the still-invited user a new invitation (and the user
	// with a password none): no admin has to think of resendInvitation.
	if n := len(f.emailsTo(outbox.EmailInvitation, invited.Email)); n != 2 {
		t.Fatalf("%d invitations emailed to the restored invited user, want 2 (the first, and one at the restore)", n)
	}
	if n := len(f.emailsTo(outbox.EmailInvitation, u.Email)); n != 0 {
		t.Fatalf("%d invitations emailed to the restored user who has a password, want none", n)
	}
	if _, err := f.svc.People.AcceptInvitation(ctx, f.latestToken(outbox.EmailInvitation, invited.Email), goodPassword); err != nil {
		t.Fatalf("the invitation sent at the restore: %v", err)
	}
}

// A password reset proves the mailbox and replaces the password the
// attempts were guessing at, so it forgets the attempts at that login: a
// user blocked by their own typos (or by a stranger's guesses from their
// address) logs in with the new password at once. The address's own count
// stays: resetting one's own password must not wipe an address's record of
// guessing at other logins.
func TestPasswordResetForgetsTheLoginsFailedAttempts(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.umaWithPassword()
	home := netip.MustParseAddr("203.0.113.9")
	for i := range tenant.PairLimit {
		if _, err := f.svc.People.Login(ctx, u.Email, fmt.Sprintf("typo %d", i), home); tenant.ErrorCode(err) != tenant.EUnauthenticated {
			t.Fatalf("wrong password %d: %v", i+1, err)
		}
	}
	if _, err := f.svc.People.Login(ctx, u.Email, "the first passphrase", home); tenant.ErrorCode(err) != tenant.ELimit {
		t.Fatalf("the right password after %d typos: %v; want LIMIT", tenant.PairLimit, err)
	}
	if err := f.svc.People.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.People.ResetPassword(ctx, f.latestToken(outbox.EmailPasswordReset, u.Email), goodPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.People.Login(ctx, u.Email, goodPassword, home); err != nil {
		t.Fatalf("the new password from the blocked address: %v (%s)", err, tenant.ErrorMessage(err))
	}
	// The address's count across logins is kept: 11 attempts so far, less
	// the login that worked; it is blocked after AddressLimit.
	for i := tenant.PairLimit + 1; i < tenant.AddressLimit; i++ {
		if _, err := f.svc.People.Login(ctx, fmt.Sprintf("nobody%d@acme.test", i), "a guess", home); tenant.ErrorCode(err) != tenant.EUnauthenticated {
			t.Fatalf("attempt %d from the address: %v", i+1, err)
		}
	}
	_, err := f.svc.People.Login(ctx, "nobody@acme.test", "a guess", home)
	if tenant.ErrorCode(err) != tenant.ELimit || !strings.HasPrefix(tenant.ErrorMessage(err), "too many failed logins") {
		t.Fatalf("attempt %d from the address: %v; want LIMIT", tenant.AddressLimit+1, err)
	}
}
