package people

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
)

// Two-factor authentication for GraphQL logins: TOTP (RFC 6238, by
// github.com/pquerna/otp) with 6-digit codes every 30 seconds, accepted one
// step either side for clock drift. A code is accepted only if its time step
// is newer than the last accepted one, so an overheard code cannot be
// replayed. Confirming the enrolment returns recoveryCodeCount single-use
// recovery codes, stored as SHA-256 hashes (they are random, 50 bits each).
//
// Required of support staff, and of owners and administrators when their
// account's RequireTotpForAdmins is on; optional for everyone else. A
// principal of whom it is required but who has not confirmed it gets, at
// login, a token marked EnrolOnly (computed at every request by
// Authenticate), which the GraphQL layer lets call only the enrolment
// mutations. SFTP logins are not affected.

const (
	totpPeriod        = 30 // seconds
	totpSkew          = 1  // steps accepted either side of now
	recoveryCodeCount = 10
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// ErrTotpRequired is Login's answer to a right password without the code
// two-factor asks for: no token is issued, and the attempt stays counted.
var ErrTotpRequired = &tenant.Error{Code: tenant.EUnauthenticated, Field: "totpCode", Message: "enter the code from your authenticator app (or a recovery code)"}

var errBadTotp = &tenant.Error{Code: tenant.EUnauthenticated, Field: "totpCode", Message: "the two-factor code is not correct"}

// TotpEnrolment is a started enrolment: the secret to put in an authenticator app.
type TotpEnrolment struct {
	URL    string // otpauth://totp/... for a QR code
	Secret string // base32, for typing in
}

type totpRow struct {
	Secret    string     `db:"secret"`
	Confirmed *time.Time `db:"confirmed_at"`
	LastStep  int64      `db:"last_step"`
}

// totpOwner names the column and value of p's TOTP row.
func totpOwner(p *tenant.Principal) (col, id string) {
	if p.IsStaff() {
		return "staff_id", p.ID
	}
	return "user_id", p.ID
}

// inOwnScope runs fn where p's own rows are: p's account for a user, the
// staff scope for a staff member.
func (s *Service) inOwnScope(ctx context.Context, p *tenant.Principal, fn func(q tenant.Queryer) error) error {
	if p.IsStaff() {
		return s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return fn(tx) })
	}
	return s.InAccount(ctx, p.AccountID, fn)
}

func requireLogin(ctx context.Context) (*tenant.Principal, error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil || (p.Kind != tenant.KindUser && p.Kind != tenant.KindStaff) || p.TokenID == "" {
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	return p, nil
}

// StartTotpEnrolment makes a new TOTP secret for the caller, replacing any
// unconfirmed one. Refused while two-factor is on (disable it first).
func (s *Service) StartTotpEnrolment(ctx context.Context) (*TotpEnrolment, error) {
	p, err := requireLogin(ctx)
	if err != nil {
		return nil, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Skiff", AccountName: p.Email, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, err
	}
	col, id := totpOwner(p)
	var account any
	if !p.IsStaff() {
		account = p.AccountID
	}
	err = s.inOwnScope(ctx, p, func(q tenant.Queryer) error {
		res, err := q.ExecContext(ctx, `INSERT INTO totp (`+col+`, account_id, secret, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (`+col+`) DO UPDATE SET secret = EXCLUDED.secret, created_at = EXCLUDED.created_at, last_step = 0
			WHERE totp.confirmed_at IS NULL`, id, account, key.Secret(), s.Time())
		if err != nil {
			return tenant.DBError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return tenant.Errorf(tenant.EConflict, "two-factor authentication is already on; disable it first")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &TotpEnrolment{URL: key.URL(), Secret: key.Secret()}, nil
}

// ConfirmTotpEnrolment turns two-factor on with a code from the app and
// returns the recovery codes, shown this once. It needs the caller's current
// password: otherwise someone holding only a stolen token could enrol their
// own app and lock the real owner out of the API (a password reset does not
// turn two-factor off). The exception is a session that Login issued
// enrol-only after checking the password (enrol_grant), while it is still
// enrol-only: it proved the password already, and may use that once. A
// password given is always checked, and counted as a login attempt (see
// countPasswordCheck); a missing or wrong one is an EInvalid user error on
// currentPassword, reported with a wrong code, and nothing is spent.
func (s *Service) ConfirmTotpEnrolment(ctx context.Context, code, currentPassword string) ([]string, error) {
	p, err := requireLogin(ctx)
	if err != nil {
		return nil, err
	}
	needPassword := currentPassword != ""
	if !needPassword {
		if needPassword, err = s.enrolNeedsPassword(ctx, p); err != nil {
			return nil, err
		}
	}
	passed := func() {}
	if currentPassword != "" {
		if passed, err = s.countPasswordCheck(ctx, p, "currentPassword"); err != nil {
			return nil, err
		}
	}
	codes, hashes := make([]string, recoveryCodeCount), make([]string, recoveryCodeCount)
	for i := range codes {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		c := strings.ToLower(base32.StdEncoding.EncodeToString(b))[:10]
		codes[i], hashes[i] = c[:5]+"-"+c[5:], recoveryHash(c)
	}
	col, id := totpOwner(p)
	err = s.inOwnScope(ctx, p, func(q tenant.Queryer) error {
		var r totpRow
		err := q.GetContext(ctx, &r, `SELECT secret, confirmed_at, last_step FROM totp WHERE `+col+` = $1 FOR UPDATE`, id)
		if err = tenant.DBError(err); tenant.ErrorCode(err) == tenant.ENotFound {
			return tenant.Errorf(tenant.EConflict, "start the enrolment first (startTotpEnrolment)")
		} else if err != nil {
			return err
		}
		if r.Confirmed != nil {
			return tenant.Errorf(tenant.EConflict, "two-factor authentication is already on")
		}
		var passwordErr error
		if needPassword {
			if currentPassword == "" {
				passwordErr = tenant.Invalid("currentPassword", "enter your current password to turn on two-factor authentication")
			} else if ok, err := ownPasswordIs(ctx, q, p, currentPassword); err != nil {
				return err
			} else if !ok {
				passwordErr = tenant.Invalid("currentPassword", "the current password is not correct")
			}
		}
		// Both mistakes at once; returning either rolls back, so a right
		// code is not spent by a wrong password.
		var codeErr error
		if ok, err := s.useTotpCode(ctx, q, col, id, r.Secret, code); err != nil {
			return err
		} else if !ok {
			codeErr = tenant.Invalid("code", "the code is not correct; check the app's clock and try the current code")
		}
		if err := errors.Join(passwordErr, codeErr); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `UPDATE totp SET confirmed_at = $2, recovery_hashes = $3 WHERE `+col+` = $1`,
			id, s.Time(), tenant.StringArray(hashes)); err != nil {
			return tenant.DBError(err)
		}
		// The logins' proofs of the password are used up: should two-factor
		// be turned off again, no session of p enrols without it.
		if _, err := q.ExecContext(ctx, `UPDATE tokens SET enrol_grant = false WHERE `+col+` = $1 AND enrol_grant`, id); err != nil {
			return tenant.DBError(err)
		}
		return s.auditTotp(ctx, q, p, "user.totp_enabled", "staff.totp_enabled")
	})
	if err != nil {
		return nil, err
	}
	passed()
	return codes, nil
}

// enrolNeedsPassword reports whether turning two-factor on needs p's
// password: always, except with a session that Login issued enrol-only
// (after checking the password) and that is enrol-only still.
func (s *Service) enrolNeedsPassword(ctx context.Context, p *tenant.Principal) (bool, error) {
	if !p.EnrolOnly {
		return true, nil
	}
	var grant bool
	err := s.inOwnScope(ctx, p, func(q tenant.Queryer) error {
		return tenant.DBError(q.GetContext(ctx, &grant, `SELECT enrol_grant FROM tokens WHERE id = $1`, p.TokenID))
	})
	return !grant, err
}

// ownPasswordIs reports whether password is p's own (a user's or a staff
// member's); an empty one never is.
func ownPasswordIs(ctx context.Context, q tenant.Queryer, p *tenant.Principal, password string) (bool, error) {
	table := "users"
	if p.IsStaff() {
		table = "staff"
	}
	var hash string
	if err := q.GetContext(ctx, &hash, `SELECT coalesce(password_hash, '') FROM `+table+` WHERE id = $1`, p.ID); err != nil {
		return false, tenant.DBError(err)
	}
	return tenant.VerifyPassword(ctx, hash, password)
}

// DisableTotp turns two-factor off, with the password and a current code or
// a recovery code. Where it is required, the next login may only enrol again.
// Every call counts as a login attempt (see countPasswordCheck), whatever it
// is given.
func (s *Service) DisableTotp(ctx context.Context, password, code string) error {
	p, err := requireLogin(ctx)
	if err != nil {
		return err
	}
	// Counted even without a password: the answer says whether the code is
	// right, so uncounted calls would let a stolen token try every code.
	passed, err := s.countPasswordCheck(ctx, p, "password")
	if err != nil {
		return err
	}
	col, id := totpOwner(p)
	err = s.inOwnScope(ctx, p, func(q tenant.Queryer) error {
		ok, err := ownPasswordIs(ctx, q, p, password)
		if err != nil {
			return err
		}
		// A wrong password and a wrong code are reported together; returning
		// either rolls back the transaction, so a code checked here is not
		// spent unless both are right.
		var passwordErr error
		if !ok {
			passwordErr = tenant.Invalid("password", "the password is not correct")
		}
		var r totpRow
		err = q.GetContext(ctx, &r, `SELECT secret, confirmed_at, last_step FROM totp WHERE `+col+` = $1 AND confirmed_at IS NOT NULL FOR UPDATE`, id)
		if err = tenant.DBError(err); tenant.ErrorCode(err) == tenant.ENotFound {
			return errors.Join(passwordErr, tenant.Errorf(tenant.EConflict, "two-factor authentication is not on"))
		} else if err != nil {
			return err
		}
		var codeErr error
		if ok, err := s.checkSecondFactor(ctx, q, col, id, r.Secret, code); err != nil {
			return err
		} else if !ok {
			codeErr = tenant.Invalid("code", "the two-factor code is not correct")
		}
		if err := errors.Join(passwordErr, codeErr); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM totp WHERE `+col+` = $1`, id); err != nil {
			return tenant.DBError(err)
		}
		return s.auditTotp(ctx, q, p, "user.totp_disabled", "staff.totp_disabled")
	})
	if err == nil {
		passed()
	}
	return err
}

// auditTotp records a change of p's two-factor: a user's as userKind in
// their account's trail, a staff member's as staffKind in the staff trail
// (q is in p's own scope, see inOwnScope).
func (s *Service) auditTotp(ctx context.Context, q tenant.Queryer, p *tenant.Principal, userKind, staffKind string) error {
	if p.IsStaff() {
		return audit.RecordStaff(ctx, q, audit.Event{Kind: staffKind, TargetKind: "Staff", TargetID: p.ID})
	}
	return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: userKind, TargetKind: "User", TargetID: p.ID})
}

// TotpEnabled reports whether the caller has two-factor on.
func (s *Service) TotpEnabled(ctx context.Context) (bool, error) {
	p, err := requireLogin(ctx)
	if err != nil {
		return false, err
	}
	col, id := totpOwner(p)
	var on bool
	err = s.inOwnScope(ctx, p, func(q tenant.Queryer) error {
		return tenant.DBError(q.GetContext(ctx, &on, `SELECT EXISTS (SELECT FROM totp WHERE `+col+` = $1 AND confirmed_at IS NOT NULL)`, id))
	})
	return on, err
}

// SetRequireTotpForAdmins turns on or off, for the caller's account, the
// requirement of two-factor for owners and administrators. Owners only; an
// owner must have it on themselves before requiring it.
func (s *Service) SetRequireTotpForAdmins(ctx context.Context, require bool) (*tenant.Account, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != tenant.RoleOwner {
		return nil, tenant.Errorf(tenant.EForbidden, "only an owner can change this setting")
	}
	var a *tenant.Account
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		if a, err = tenant.LockAccount(ctx, q, p.AccountID); err != nil {
			return err
		}
		if a.RequireTotpForAdmins == require {
			return nil
		}
		if require {
			var on bool
			if err := q.GetContext(ctx, &on, `SELECT EXISTS (SELECT FROM totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)`, p.ID); err != nil {
				return tenant.DBError(err)
			}
			if !on {
				return tenant.Errorf(tenant.EConflict, "turn on two-factor authentication for yourself before requiring it")
			}
		}
		if _, err := q.ExecContext(ctx, `UPDATE accounts SET require_totp_for_admins = $2, updated_at = $3 WHERE id = $1`, a.ID, require, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		before := a.RequireTotpForAdmins
		a.RequireTotpForAdmins, a.UpdatedAt = require, s.Time()
		return audit.Record(ctx, q, a.ID, audit.Event{Kind: "account.require_totp_changed", TargetKind: "Account", TargetID: a.ID,
			Before: map[string]bool{"requireTotpForAdmins": before}, After: map[string]bool{"requireTotpForAdmins": require}})
	})
	return tenant.Result(a, err)
}

// loginSecondFactor is the login's second step, after the password was
// accepted: it says whether the token to issue is enrol-only, or refuses.
func (s *Service) loginSecondFactor(ctx context.Context, q tenant.Queryer, p *tenant.Principal, code string) (enrolOnly bool, err error) {
	col, id := totpOwner(p)
	var r totpRow
	err = q.GetContext(ctx, &r, `SELECT secret, confirmed_at, last_step FROM totp WHERE `+col+` = $1 AND confirmed_at IS NOT NULL`, id)
	switch err = tenant.DBError(err); {
	case err == nil:
		if strings.TrimSpace(code) == "" {
			return false, ErrTotpRequired
		}
		ok, err := s.checkSecondFactor(ctx, q, col, id, r.Secret, code)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, errBadTotp
		}
		return false, nil
	case tenant.ErrorCode(err) != tenant.ENotFound:
		return false, err
	}
	return s.totpRequired(ctx, q, p)
}

// totpRequired reports whether two-factor is required of p: always of
// staff, of owners and administrators when their account says so.
func (s *Service) totpRequired(ctx context.Context, q tenant.Queryer, p *tenant.Principal) (bool, error) {
	if p.IsStaff() {
		return true, nil
	}
	if p.Role != tenant.RoleOwner && p.Role != tenant.RoleAdmin {
		return false, nil
	}
	var req bool
	err := q.GetContext(ctx, &req, `SELECT require_totp_for_admins FROM accounts WHERE id = $1`, p.AccountID)
	return req, tenant.DBError(err)
}

// checkSecondFactor accepts a current TOTP code (6 digits) or an unused
// recovery code, using it up.
func (s *Service) checkSecondFactor(ctx context.Context, q tenant.Queryer, col, id, secret, code string) (bool, error) {
	code = strings.TrimSpace(code)
	if len(code) == 6 && strings.Trim(code, "0123456789") == "" {
		return s.useTotpCode(ctx, q, col, id, secret, code)
	}
	res, err := q.ExecContext(ctx, `UPDATE totp SET recovery_hashes = array_remove(recovery_hashes, $2)
		WHERE `+col+` = $1 AND $2 = ANY (recovery_hashes)`, id, recoveryHash(code))
	if err != nil {
		return false, tenant.DBError(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// useTotpCode accepts code if it is the code of a time step within the skew
// of now and newer than the last step accepted, and records that step.
func (s *Service) useTotpCode(ctx context.Context, q tenant.Queryer, col, id, secret, code string) (bool, error) {
	code = strings.TrimSpace(code)
	now := s.Time()
	for d := -totpSkew; d <= totpSkew; d++ {
		t := now.Add(time.Duration(d*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts)
		if err != nil {
			return false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		res, err := q.ExecContext(ctx, `UPDATE totp SET last_step = $2 WHERE `+col+` = $1 AND last_step < $2`, id, t.Unix()/totpPeriod)
		if err != nil {
			return false, tenant.DBError(err)
		}
		n, err := res.RowsAffected()
		return n == 1, err
	}
	return false, nil
}

// recoveryHash is how a recovery code is stored: case, spaces and dashes do not matter.
func recoveryHash(code string) string {
	c := strings.NewReplacer("-", "", " ", "").Replace(strings.ToLower(strings.TrimSpace(code)))
	h := sha256.Sum256([]byte(c))
	return hex.EncodeToString(h[:])
}
