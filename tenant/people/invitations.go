package people

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
)

// One-time tokens: how long they last and how often a reset may be asked for.
const (
	InvitationTTL    = 7 * 24 * time.Hour
	PasswordResetTTL = time.Hour
	// Password-reset requests per email address and window. The limit keeps
	// Skiff from being used to flood someone's mailbox.
	ResetRequestsPerWindow = 3
	ResetWindow            = time.Hour
	// OneTimeTokenLen is the length of a token: 32 random bytes, base64url.
	OneTimeTokenLen = 43
	// ExpiredTokenRetention keeps expired tokens a while so that an old link
	// says "expired" rather than "not valid"; PurgeExpiredTokens removes them after.
	ExpiredTokenRetention = 30 * 24 * time.Hour
)

// A reset link outlives the window of requests it was sent in, so that the
// newest link works for as long as the limit refuses more (a negative
// difference does not compile).
const _ = uint64(PasswordResetTTL - ResetWindow)

type tokenPurpose string

const (
	purposeInvitation    tokenPurpose = "INVITATION"
	purposePasswordReset tokenPurpose = "PASSWORD_RESET"
)

// newOneTimeToken returns a random secret for an email link and the SHA-256
// that is stored in its place.
func newOneTimeToken() (token string, hash []byte, err error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
	}
	token = base64.RawURLEncoding.EncodeToString(secret)
	h := sha256.Sum256([]byte(token))
	return token, h[:], nil
}

// issueOneTimeToken stores a new token for u. Earlier outstanding tokens of
// the same purpose stay valid: the user may open any of the emails.
func (s *Service) issueOneTimeToken(ctx context.Context, q tenant.Queryer, u *tenant.User, purpose tokenPurpose, ttl time.Duration) (string, time.Time, error) {
	token, hash, err := newOneTimeToken()
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.Time()
	expires := now.Add(ttl)
	if _, err := q.ExecContext(ctx, `INSERT INTO one_time_tokens (account_id, user_id, purpose, hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, u.AccountID, u.ID, string(purpose), hash, now, expires); err != nil {
		return "", time.Time{}, tenant.DBError(err)
	}
	return token, expires, nil
}

// sendInvitationTx invites u, who has no password yet, to set one: it issues
// an invitation token (valid InvitationTTL) and enqueues the invitation email
// in the caller's transaction. The inviter is the request's principal. Earlier
// invitations of u are revoked, so only the newest link works.
func (s *Service) sendInvitationTx(ctx context.Context, q tenant.Queryer, u *tenant.User) error {
	var accountName string
	if err := q.GetContext(ctx, &accountName, `SELECT name FROM accounts WHERE id = $1`, u.AccountID); err != nil {
		return tenant.DBError(err)
	}
	if _, err := q.ExecContext(ctx, `UPDATE one_time_tokens SET revoked_at = $3
		WHERE account_id = $1 AND user_id = $2 AND purpose = 'INVITATION' AND used_at IS NULL AND revoked_at IS NULL`,
		u.AccountID, u.ID, s.Time()); err != nil {
		return tenant.DBError(err)
	}
	token, expires, err := s.issueOneTimeToken(ctx, q, u, purposeInvitation, InvitationTTL)
	if err != nil {
		return err
	}
	if err := outbox.Enqueue(ctx, q, u.AccountID, outbox.Email{To: u.Email, Data: outbox.InvitationData{
		InviteeName: u.Name, AccountName: accountName, InvitedBy: tenant.ActorOf(ctx).Name, Token: token, ExpiresAt: expires,
	}}); err != nil {
		return err
	}
	return audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "user.invited", TargetKind: "User", TargetID: u.ID,
		After: map[string]any{"email": u.Email, "expiresAt": expires}})
}

// ResendInvitation sends a new invitation to a user who has not set a
// password yet (the previous link stops working). Owners and administrators
// only; a user of another account is not found; a user who already has a
// password, or is deleted, is an EConflict user error.
func (s *Service) ResendInvitation(ctx context.Context, userID string) error {
	p, err := tenant.RequireAdmin(ctx)
	if err != nil {
		return err
	}
	return s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		u, err := tenant.GetUser(ctx, q, userID, true)
		if err != nil {
			return err
		}
		switch {
		case u.Deleted():
			return &tenant.Error{Code: tenant.EConflict, Field: "userId", Message: "this user is deleted; restore them first"}
		case u.PasswordHash != nil:
			return &tenant.Error{Code: tenant.EConflict, Field: "userId", Message: "this user has already set a password; they can reset it if they forgot it"}
		}
		return s.sendInvitationTx(ctx, q, u)
	})
}

// AcceptInvitation sets the invited user's first password from an invitation
// link's token and logs them in. A token that is unknown, expired, already
// used or replaced, and a password that is too short or long, are EInvalid
// user errors (field "token" or "password").
func (s *Service) AcceptInvitation(ctx context.Context, token, password string) (*LoginResult, error) {
	var res *LoginResult
	err := s.redeemToken(ctx, token, password, purposeInvitation, func(ctx context.Context, q tenant.Queryer, u *tenant.User) error {
		if err := audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "user.invitation_accepted", TargetKind: "User", TargetID: u.ID}); err != nil {
			return err
		}
		var err error
		res, err = s.issueToken(ctx, q, tenant.PrincipalFrom(ctx), LoginOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// RequestPasswordReset emails a password-reset link (valid PasswordResetTTL)
// to the live user with this email address, if there is one. The answer is
// the same either way, and so is the work done, so it tells nobody whether
// the address has an account. More than three requests an hour for one
// address are an ELimit user error, whether or not it has an account,
// that says to use the newest link already sent and gives the time left in
// the hour: a link works for as long as the hour's limit holds, so requests
// made by a stranger to use up the limit lock nobody out (the newest of the
// emails they caused still works). A malformed address is an EInvalid user
// error.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	email, err := tenant.NormEmail("email", email)
	if err != nil {
		return err
	}
	emailHash := sha256.Sum256([]byte(strings.ToLower(email)))
	now := s.Time()
	var (
		window struct {
			Requests int       `db:"requests"`
			Started  time.Time `db:"window_started_at"`
		}
		users []*tenant.User
	)
	err = s.DB.CrossTenant(ctx, tenant.ScopeAuth, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &window, `INSERT INTO password_reset_requests AS r (email_hash, window_started_at, requests)
			VALUES ($1, $2, 1)
			ON CONFLICT (email_hash) DO UPDATE SET
			  requests = CASE WHEN r.window_started_at <= $3 THEN 1 ELSE r.requests + 1 END,
			  window_started_at = CASE WHEN r.window_started_at <= $3 THEN $2 ELSE r.window_started_at END
			RETURNING requests, window_started_at`, emailHash[:], now, now.Add(-ResetWindow)); err != nil {
			return tenant.DBError(err)
		}
		if window.Requests > ResetRequestsPerWindow {
			return nil // commit the count, then refuse
		}
		return tenant.DBError(tx.SelectContext(ctx, &users, `SELECT `+tenant.UserColumns+` FROM users
			WHERE lower(email) = lower($1) AND deleted_at IS NULL`, email))
	})
	if err != nil {
		return err
	}
	if window.Requests > ResetRequestsPerWindow {
		// Every link sent in this window outlives it (PasswordResetTTL):
		// whoever asked for them, the newest one still works.
		left := max((window.Started.Add(ResetWindow).Sub(now) + time.Second - 1).Truncate(time.Second), time.Second)
		return &tenant.Error{Code: tenant.ELimit, Field: "email", RetryAfter: left,
			Message: "password reset links were already sent to this address within the hour, if it has an account: use the newest one, which still works, or ask again later"}
	}
	if len(users) != 1 {
		return s.resetDecoy(ctx, emailHash[:])
	}
	u := users[0]
	return s.InAccount(ctx, u.AccountID, func(q tenant.Queryer) error {
		token, expires, err := s.issueOneTimeToken(ctx, q, u, purposePasswordReset, PasswordResetTTL)
		if err != nil {
			return err
		}
		if err := outbox.Enqueue(ctx, q, u.AccountID, outbox.Email{To: u.Email, Data: outbox.PasswordResetData{UserName: u.Name, Token: token, ExpiresAt: expires}}); err != nil {
			return err
		}
		return audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "user.password_reset_requested", TargetKind: "User", TargetID: u.ID})
	})
}

// resetDecoy does, for an address without an account, what RequestPasswordReset
// does for one that has, so that timing does not tell the two apart: make a
// token, then commit a transaction of as many statements as the real one's
// (token, email, audit), each writing one row as they do. Writes matter: a
// transaction that wrote must flush the log when it commits, a read-only one
// need not, and that flush was most of the difference (about 2.5 ms). The
// row written is the address's own request counter, rewritten unchanged.
func (s *Service) resetDecoy(ctx context.Context, emailHash []byte) error {
	if _, _, err := newOneTimeToken(); err != nil {
		return err
	}
	return s.DB.CrossTenant(ctx, tenant.ScopeAuth, func(tx *sqlx.Tx) error {
		for range 3 {
			if _, err := tx.ExecContext(ctx, `UPDATE password_reset_requests SET requests = requests WHERE email_hash = $1`, emailHash); err != nil {
				return tenant.DBError(err)
			}
		}
		return nil
	})
}

// ResetPassword sets a new password from a password-reset link's token. It
// ends every session of the user (bearer tokens and SFTP), since a reset often
// follows a leak, spends every other outstanding link of theirs, and forgets
// the failed logins at their email (tenant.ForgetLogin), so that a login
// blocked by them works with the new password at once. A token
// that is unknown, expired or already used, and a password that is too short
// or long, are EInvalid user errors (field "token" or "password").
func (s *Service) ResetPassword(ctx context.Context, token, password string) error {
	var u *tenant.User
	err := s.redeemToken(ctx, token, password, purposePasswordReset, func(ctx context.Context, q tenant.Queryer, target *tenant.User) error {
		u = target
		if _, err := q.ExecContext(ctx, `UPDATE tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, u.ID, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		// The failed logins counted were guesses at the old password, and
		// the link proved the mailbox: the user is not kept waiting out a
		// block. Only the login's counts go, not the addresses'.
		if err := tenant.ForgetLogin(ctx, q, "email", u.Email); err != nil {
			return err
		}
		return audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "user.password_reset", TargetKind: "User", TargetID: u.ID})
	})
	if err != nil {
		return err
	}
	s.EndSessions(u.AccountID, u.ID)
	return nil
}

// revokeLinksTx ends every outstanding one-time link of u (invitations and
// password resets), in the caller's transaction.
func (s *Service) revokeLinksTx(ctx context.Context, q tenant.Queryer, u *tenant.User) error {
	_, err := q.ExecContext(ctx, `UPDATE one_time_tokens SET revoked_at = $3
		WHERE account_id = $1 AND user_id = $2 AND used_at IS NULL AND revoked_at IS NULL`, u.AccountID, u.ID, s.Time())
	return tenant.DBError(err)
}

// tokenRef is where a one-time token belongs, found before the tenant is known.
type tokenRef struct {
	ID        string     `db:"id"`
	AccountID string     `db:"account_id"`
	UserID    string     `db:"user_id"`
	ExpiresAt time.Time  `db:"expires_at"`
	UsedAt    *time.Time `db:"used_at"`
	RevokedAt *time.Time `db:"revoked_at"`
}

// redeemToken spends a one-time token of the given purpose and sets the
// user's password, then runs then in the same transaction, with a context
// whose principal is the user. Every other outstanding token of the user is
// revoked. The password is hashed before the token is looked at, so a bad
// token costs as much as a good one. A password too weak to hash and a token
// that cannot be used are reported together (errors.Join), token first.
func (s *Service) redeemToken(ctx context.Context, token, password string, purpose tokenPurpose,
	then func(ctx context.Context, q tenant.Queryer, u *tenant.User) error) error {
	pwErr := tenant.ValidatePassword(password)
	var hash string
	if pwErr == nil {
		var err error
		if hash, err = tenant.HashPassword(ctx, password); err != nil {
			return err
		}
	}
	refusal := tokenRefusals[purpose]
	if len(token) != OneTimeTokenLen {
		return errors.Join(refusal.unknown, pwErr)
	}
	h := sha256.Sum256([]byte(token))
	const query = `SELECT id, account_id, user_id, expires_at, used_at, revoked_at FROM one_time_tokens WHERE hash = $1 AND purpose = $2`
	var refs []tokenRef
	if err := s.DB.CrossTenant(ctx, tenant.ScopeAuth, func(tx *sqlx.Tx) error {
		return tenant.DBError(tx.SelectContext(ctx, &refs, query, h[:], string(purpose)))
	}); err != nil {
		return err
	}
	if len(refs) == 0 {
		return errors.Join(refusal.unknown, pwErr)
	}
	return s.InAccount(ctx, refs[0].AccountID, func(q tenant.Queryer) error {
		// The user's row lock first, as everywhere else, then the token's: two
		// redemptions of one token queue here and the second sees it spent.
		u, err := tenant.GetUser(ctx, q, refs[0].UserID, true)
		if err != nil {
			return err
		}
		var ref tokenRef
		if err := q.GetContext(ctx, &ref, query+` FOR UPDATE`, h[:], string(purpose)); err != nil {
			return tenant.DBError(err)
		}
		now := s.Time()
		var tokenErr error
		// A deleted user's links read as not valid, as before DeleteUser
		// revoked them: "use the latest email" would not help.
		switch {
		case ref.UsedAt != nil:
			tokenErr = refusal.used
		case u.Deleted():
			tokenErr = refusal.unknown
		case ref.RevokedAt != nil:
			tokenErr = refusal.revoked
		case !now.Before(ref.ExpiresAt):
			tokenErr = refusal.expired
		}
		if err := errors.Join(tokenErr, pwErr); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `UPDATE one_time_tokens SET used_at = $2 WHERE id = $1`, ref.ID, now); err != nil {
			return tenant.DBError(err)
		}
		if err := s.revokeLinksTx(ctx, q, u); err != nil {
			return err
		}
		if err := q.GetContext(ctx, u, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1 RETURNING `+tenant.UserColumns,
			u.ID, hash, now); err != nil {
			return tenant.DBError(err)
		}
		p := &tenant.Principal{Kind: tenant.KindUser, ID: u.ID, AccountID: u.AccountID, Role: u.Role, Name: u.Name, Email: u.Email}
		return then(tenant.WithPrincipal(ctx, p), q, u)
	})
}

// tokenRefusal is what a link says when it cannot be used. The holder of a
// token knows its secret, so telling them why it failed reveals nothing.
type tokenRefusal struct{ unknown, expired, used, revoked *tenant.Error }

var tokenRefusals = map[tokenPurpose]tokenRefusal{
	purposeInvitation: {
		unknown: tenant.Invalid("token", "this invitation link is not valid; ask an administrator of your account to send a new one"),
		expired: tenant.Invalid("token", "this invitation has expired; ask an administrator of your account to send a new one"),
		used:    tenant.Invalid("token", "this invitation has already been accepted; log in with your password, or reset it if you forgot it"),
		revoked: tenant.Invalid("token", "this invitation link is no longer valid; use the link in the latest email, or log in if you already set a password"),
	},
	purposePasswordReset: {
		unknown: tenant.Invalid("token", "this password reset link is not valid; request a new one"),
		expired: tenant.Invalid("token", "this password reset link has expired; request a new one"),
		used:    tenant.Invalid("token", "this password reset link has already been used; request a new one if you need to"),
		revoked: tenant.Invalid("token", "this password reset link is no longer valid; use the link in the latest email, or request a new one"),
	},
}

// PurgeExpiredTokens deletes one-time tokens that expired more than 30 days
// ago and password-reset counters whose window has passed, and returns how
// many tokens went. serve calls it from its hourly ticker with SystemContext;
// staff may run it too; anyone else is FORBIDDEN.
func (s *Service) PurgeExpiredTokens(ctx context.Context) (int, error) {
	if p := tenant.PrincipalFrom(ctx); !tenant.IsSystem(p) && !p.IsStaff() {
		return 0, tenant.Errorf(tenant.EForbidden, "only the system or support staff can purge expired tokens")
	}
	now := s.Time()
	var n int64
	err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM one_time_tokens WHERE expires_at < $1`, now.Add(-ExpiredTokenRetention))
		if err != nil {
			return tenant.DBError(err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return tenant.DBError(err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM password_reset_requests WHERE window_started_at <= $1`, now.Add(-ResetWindow))
		return tenant.DBError(err)
	})
	return int(n), err
}
