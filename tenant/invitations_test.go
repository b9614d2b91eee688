package tenant

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// latestToken returns the one-time token of the newest email of kind to addr.
func (f *moduleFixture) latestToken(kind EmailKind, addr string) string {
	f.t.Helper()
	mails := f.emailsTo(kind, addr)
	if len(mails) == 0 {
		f.t.Fatalf("no %s email to %s", kind, addr)
	}
	token, _ := mails[len(mails)-1].Data["Token"].(string)
	if len(token) != oneTimeTokenLen {
		f.t.Fatalf("%s email to %s carries token %q", kind, addr, token)
	}
	return token
}

// wantRefusal fails unless err is the token user error whose message contains want.
func (f *moduleFixture) wantRefusal(err error, want string) {
	f.t.Helper()
	f.wantCode(err, EInvalid, "redeem")
	if ErrorField(err) != "token" || !strings.Contains(ErrorMessage(err), want) {
		f.t.Fatalf("refusal = %q on field %q, want it to say %q", ErrorMessage(err), ErrorField(err), want)
	}
}

const goodPassword = "a long enough passphrase"

func TestInvitation(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", RoleUser)
	if err := f.svc.ResendInvitation(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	mail := f.emailsTo(EmailInvitation, u.Email)
	last := mail[len(mail)-1].Data
	if last["AccountName"] != "Acme" || last["InvitedBy"] != f.owner.Name || last["InviteeName"] != u.Name {
		t.Fatalf("invitation email = %+v", last)
	}
	token := f.latestToken(EmailInvitation, u.Email)

	_, err := f.svc.AcceptInvitation(ctx, token, "short")
	f.wantCode(err, EInvalid, "short password")
	if ErrorField(err) != "password" {
		t.Fatalf("short password error names field %q", ErrorField(err))
	}
	res, err := f.svc.AcceptInvitation(ctx, token, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if res.Principal.ID != u.ID || res.Principal.AccountID != f.account.ID {
		t.Fatalf("accepting logged in %+v, want %s", res.Principal, u.ID)
	}
	if p, err := f.svc.Authenticate(ctx, res.Token); err != nil || p.ID != u.ID {
		t.Fatalf("the token from accepting: %+v, %v", p, err)
	}
	if _, err := f.svc.Login(ctx, u.Email, goodPassword, netip.Addr{}); err != nil {
		t.Fatalf("login with the chosen password: %v", err)
	}

	// A link works once; a user with a password gets no new invitation.
	_, err = f.svc.AcceptInvitation(ctx, token, "another long passphrase")
	f.wantRefusal(err, "already been accepted")
	err = f.svc.ResendInvitation(f.ownerCtx, u.ID)
	f.wantCode(err, EConflict, "invite a user with a password")

	_, err = f.svc.AcceptInvitation(ctx, strings.Repeat("A", oneTimeTokenLen), goodPassword)
	f.wantRefusal(err, "not valid")
	_, err = f.svc.AcceptInvitation(ctx, "garbage", goodPassword)
	f.wantRefusal(err, "not valid")

	events, err := f.svc.AuditEvents(f.ownerCtx, f.account.ID, AuditFilter{Kinds: []string{"user.invited", "user.invitation_accepted"}, UserID: u.ID}, Page{})
	if err != nil || len(events.Items) < 2 || events.Items[0].Kind != "user.invitation_accepted" || events.Items[0].ActorKind != "USER" {
		t.Fatalf("invitation audit events = %+v, %v", events, err)
	}
}

func TestInvitationExpiresAndIsReplaced(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", RoleUser)
	plain := f.newUser("pat@acme.test", RoleUser)

	err := f.svc.ResendInvitation(f.as(plain), u.ID)
	f.wantCode(err, EForbidden, "plain user invites")
	if err := f.svc.ResendInvitation(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	old := f.latestToken(EmailInvitation, u.Email)
	if err := f.svc.ResendInvitation(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	fresh := f.latestToken(EmailInvitation, u.Email)
	_, err = f.svc.AcceptInvitation(ctx, old, goodPassword)
	f.wantRefusal(err, "no longer valid")

	f.advance(InvitationTTL)
	_, err = f.svc.AcceptInvitation(ctx, fresh, goodPassword)
	f.wantRefusal(err, "expired")
	if _, err := f.svc.Login(ctx, u.Email, goodPassword, netip.Addr{}); ErrorCode(err) != EUnauthenticated {
		t.Fatalf("a refused invitation set a password: login gave %v", err)
	}

	// An invitation for a user deleted meanwhile is not valid.
	if err := f.svc.ResendInvitation(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	token := f.latestToken(EmailInvitation, u.Email)
	if _, err := f.svc.DeleteUser(f.ownerCtx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AcceptInvitation(ctx, token, goodPassword)
	f.wantRefusal(err, "not valid")
}

func TestPasswordReset(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u, err := f.svc.CreateUser(f.ownerCtx, CreateUserInput{Email: "uma@acme.test", Name: "Uma", Password: "the first passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	session, err := f.svc.Login(ctx, u.Email, "the first passphrase", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}

	// Known and unknown addresses get the same answer; only the known one gets mail.
	if err := f.svc.RequestPasswordReset(ctx, "UMA@acme.test"); err != nil {
		t.Fatalf("reset for a known address: %v", err)
	}
	if err := f.svc.RequestPasswordReset(ctx, "nobody@acme.test"); err != nil {
		t.Fatalf("reset for an unknown address: %v", err)
	}
	if mails := f.emails(EmailPasswordReset); len(mails) != 1 || mails[0].To != u.Email {
		t.Fatalf("reset emails = %+v, want one to %s", mails, u.Email)
	}
	err = f.svc.RequestPasswordReset(ctx, "not an address")
	f.wantCode(err, EInvalid, "malformed address")

	first := f.latestToken(EmailPasswordReset, u.Email)
	if err := f.svc.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	second := f.latestToken(EmailPasswordReset, u.Email)

	err = f.svc.ResetPassword(ctx, second, "short")
	f.wantCode(err, EInvalid, "short password")
	if err := f.svc.ResetPassword(ctx, second, "the second passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(ctx, u.Email, "the second passphrase", netip.Addr{}); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if _, err := f.svc.Login(ctx, u.Email, "the first passphrase", netip.Addr{}); ErrorCode(err) != EUnauthenticated {
		t.Fatalf("login with the old password: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, session.Token); ErrorCode(err) != EUnauthenticated {
		t.Fatalf("a session from before the reset still works: %v", err)
	}
	if got := f.sessions.ended(); len(got) != 1 || got[0] != u.ID {
		t.Fatalf("SFTP sessions ended by the reset: %v", got)
	}

	// Each link works once, and using one spends the others.
	err = f.svc.ResetPassword(ctx, second, "the third passphrase")
	f.wantRefusal(err, "already been used")
	err = f.svc.ResetPassword(ctx, first, "the third passphrase")
	f.wantRefusal(err, "no longer valid")
}

func TestPasswordResetExpires(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", RoleUser)
	if err := f.svc.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	token := f.latestToken(EmailPasswordReset, u.Email)
	f.advance(PasswordResetTTL)
	err := f.svc.ResetPassword(ctx, token, goodPassword)
	f.wantRefusal(err, "expired")
}

func TestPasswordResetRateLimitIsTheSameForEveryAddress(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	u := f.newUser("uma@acme.test", RoleUser)

	var refusals []string
	for _, addr := range []string{u.Email, "nobody@acme.test"} {
		for range resetRequestsPerWindow {
			if err := f.svc.RequestPasswordReset(ctx, addr); err != nil {
				t.Fatalf("request for %s within the limit: %v", addr, err)
			}
		}
		err := f.svc.RequestPasswordReset(ctx, addr)
		f.wantCode(err, ELimit, "request over the limit for "+addr)
		refusals = append(refusals, ErrorMessage(err))
	}
	if refusals[0] != refusals[1] {
		t.Fatalf("the limit tells addresses apart: %q vs %q", refusals[0], refusals[1])
	}
	if got := len(f.emails(EmailPasswordReset)); got != resetRequestsPerWindow {
		t.Fatalf("%d reset emails, want %d", got, resetRequestsPerWindow)
	}

	f.advance(resetWindow)
	if err := f.svc.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatalf("request after the window: %v", err)
	}
	n, err := f.svc.PurgeExpiredTokens(SystemContext(ctx))
	if err != nil || n != 0 {
		t.Fatalf("purge right after: %d, %v", n, err)
	}
	f.advance(expiredTokenRetention + 2*time.Hour)
	if n, err := f.svc.PurgeExpiredTokens(SystemContext(ctx)); err != nil || n != resetRequestsPerWindow+1 {
		t.Fatalf("purge of old tokens: %d, %v; want %d", n, err, resetRequestsPerWindow+1)
	}
	_, err = f.svc.PurgeExpiredTokens(f.ownerCtx)
	f.wantCode(err, EForbidden, "owner purges")
}
