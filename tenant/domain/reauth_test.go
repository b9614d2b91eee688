package domain_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/pquerna/otp/totp"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
)

// The checks of one's own password that a logged-in request makes
// (changePassword, an email change, disableTotp) count as login attempts at
// the caller's email from their address: someone holding a stolen token
// gets no more guesses at the password than a stranger at the login form,
// and a right password resets the count as a login does.
func TestPasswordChecksOfTheLoggedInAreThrottledLikeLogins(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	u := w.user("Uma", tenant.RoleUser)
	thief := netip.MustParseAddr("198.51.100.7")
	as := func(addr netip.Addr) context.Context {
		return tenant.WithPrincipal(context.Background(), &tenant.Principal{
			Kind: tenant.KindUser, ID: u.ID, AccountID: u.AccountID, Role: u.Role, Name: u.Name, Email: u.Email, Addr: addr,
			TokenID: "a token",
		})
	}
	ctx := as(thief)
	// The right password resets the count, as a login does.
	for range tenant.PairLimit - 1 {
		if err := w.svc.People.ChangePassword(ctx, "not the password", "a new long password"); tenant.ErrorCode(err) != tenant.EInvalid {
			t.Fatalf("a wrong current password: %v; want INVALID", err)
		}
	}
	if err := w.svc.People.ChangePassword(ctx, password, password); err != nil {
		t.Fatalf("the right current password: %v", err)
	}
	guesses := []func(i int) error{
		func(i int) error {
			return w.svc.People.ChangePassword(ctx, fmt.Sprintf("guess %d", i), "a new long password")
		},
		func(i int) error {
			email := "uma.new@acme.example"
			_, err := w.svc.People.UpdateUser(ctx, people.UpdateUserInput{ID: u.ID, Email: &email, CurrentPassword: fmt.Sprintf("guess %d", i)})
			return err
		},
		func(i int) error { return w.svc.People.DisableTotp(ctx, fmt.Sprintf("guess %d", i), "123456") },
	}
	for i := range tenant.PairLimit {
		if err := guesses[i%len(guesses)](i); tenant.ErrorCode(err) == tenant.ELimit {
			t.Fatalf("guess %d refused as LIMIT already: %v", i+1, err)
		}
	}
	for i, guess := range guesses {
		if err := guess(100 + i); tenant.ErrorCode(err) != tenant.ELimit {
			t.Errorf("guess %d after %d: %v; want LIMIT", i, tenant.PairLimit, err)
		}
	}
	// Even the right password now waits, and so do logins from that address.
	if err := w.svc.People.ChangePassword(ctx, password, "a new long password"); tenant.ErrorCode(err) != tenant.ELimit {
		t.Errorf("the right password after the guesses: %v; want LIMIT", err)
	}
	if _, err := w.svc.People.Login(context.Background(), u.Email, password, thief); tenant.ErrorCode(err) != tenant.ELimit {
		t.Errorf("a login from the guessing address: %v; want LIMIT", err)
	}
	// The user, from their own address, is not locked out.
	if err := w.svc.People.ChangePassword(as(netip.MustParseAddr("203.0.113.9")), password, "a new long password"); err != nil {
		t.Errorf("the user from another address: %v", err)
	}
}

// stolenToken makes a user and the context of a request made with their
// token from someone else's address.
func stolenToken(w *world) (context.Context, *tenant.User) {
	u := w.user("Uma", tenant.RoleUser)
	return tenant.WithPrincipal(context.Background(), &tenant.Principal{
		Kind: tenant.KindUser, ID: u.ID, AccountID: u.AccountID, Role: u.Role, Name: u.Name, Email: u.Email,
		Addr: netip.MustParseAddr("198.51.100.7"), TokenID: "a stolen token",
	}), u
}

// disableTotp answers whether its code is right even when the password is
// missing or wrong (both mistakes are reported together), so every call
// counts, an empty password too: a stolen token cannot try code after code
// for free, learn a current one and then pair it with a guessed password.
func TestDisableTotpCountsCallsWithoutAPassword(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, _ := stolenToken(w)
	e, err := w.svc.People.StartTotpEnrolment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code := func() string {
		c, err := totp.GenerateCode(e.Secret, w.svc.Time())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := w.svc.People.ConfirmTotpEnrolment(ctx, code(), password); err != nil {
		t.Fatal(err)
	}
	for i := range tenant.PairLimit {
		err := w.svc.People.DisableTotp(ctx, "", fmt.Sprintf("%06d", i))
		if tenant.ErrorCode(err) != tenant.EInvalid {
			t.Fatalf("guess %d: %v; want INVALID", i+1, err)
		}
	}
	err = w.svc.People.DisableTotp(ctx, "", "999999")
	if tenant.ErrorCode(err) != tenant.ELimit || tenant.ErrorField(err) != "password" {
		t.Fatalf("a guess after %d without a password: %v (field %q); want LIMIT on password", tenant.PairLimit, err, tenant.ErrorField(err))
	}
	if on, err := w.svc.People.TotpEnabled(ctx); err != nil || !on {
		t.Fatalf("two-factor on after the guesses: %v, %v", on, err)
	}
}

// A current password sent with an email that does not change is never
// checked, so it must not reset the count as a right password does:
// otherwise a stolen token could wipe its (login, address) count between
// every few guesses at changePassword, and guess without end.
func TestUncheckedPasswordDoesNotResetTheCount(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, u := stolenToken(w)
	for i := range tenant.PairLimit - 2 {
		if err := w.svc.People.ChangePassword(ctx, fmt.Sprintf("guess %d", i), "a new long password"); tenant.ErrorCode(err) != tenant.EInvalid {
			t.Fatalf("guess %d: %v; want INVALID", i+1, err)
		}
	}
	same := u.Email
	if _, err := w.svc.People.UpdateUser(ctx, people.UpdateUserInput{ID: u.ID, Email: &same, CurrentPassword: "not the password"}); err != nil {
		t.Fatalf("an update that changes nothing: %v", err)
	}
	if err := w.svc.People.ChangePassword(ctx, "guess 9", "a new long password"); tenant.ErrorCode(err) != tenant.EInvalid {
		t.Fatalf("guess %d: %v; want INVALID", tenant.PairLimit, err)
	}
	err := w.svc.People.ChangePassword(ctx, "guess 10", "a new long password")
	if tenant.ErrorCode(err) != tenant.ELimit || tenant.ErrorField(err) != "currentPassword" {
		t.Fatalf("guess %d: %v (field %q); want LIMIT on currentPassword", tenant.PairLimit+1, err, tenant.ErrorField(err))
	}
}
