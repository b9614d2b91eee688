package people

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/skiffhq/skiff/tenant"
)

// tokenPrefix makes Skiff tokens recognisable in logs and secret scanners.
const tokenPrefix = "skf_"

// LoginResult is what a successful login (or RefreshSession) returns.
type LoginResult struct {
	Token     string // shown once; only its hash is stored
	ExpiresAt time.Time
	Principal *tenant.Principal
	// RefreshToken and RefreshExpiresAt are set for TokenAccessAndRefresh:
	// Token is then the short-lived access token.
	RefreshToken     string
	RefreshExpiresAt time.Time
}

type loginRow struct {
	Kind      string  `db:"kind"`
	ID        string  `db:"id"`
	AccountID *string `db:"account_id"`
	Role      *string `db:"role"`
	Name      string  `db:"name"`
	Email     string  `db:"email"`
	Hash      *string `db:"password_hash"`
	// The IP allowlists of the user's account and of the user (staff have none).
	AccountAllowlist pq.StringArray `db:"account_allowlist"`
	UserAllowlist    pq.StringArray `db:"user_allowlist"`
}

// allowedFrom reports whether the row's allowlists let remote in.
func (r *loginRow) allowedFrom(remote netip.Addr) bool {
	return tenant.IPAllowedBoth(r.AccountAllowlist, r.UserAllowlist, remote)
}

// Login checks an email and password (of a user or a staff member) and
// returns a new bearer token. Every failure says the same thing; repeated
// attempts at one email are slowed down, and from one address blocked (see
// tenant.CountLoginAttempt). Two-factor logins need LoginWithCode.
func (s *Service) Login(ctx context.Context, email, password string, remote netip.Addr) (*LoginResult, error) {
	return s.LoginWithCode(ctx, email, password, "", remote)
}

// LoginWithCode is Login with a second factor: when the principal has
// two-factor on, totpCode must be a current TOTP code or an unused recovery
// code (ErrTotpRequired when it is empty); a wrong or missing code stays
// counted as a failed attempt. When two-factor is required of the principal
// but not on, the token is enrol-only (tenant.Principal.EnrolOnly).
func (s *Service) LoginWithCode(ctx context.Context, email, password, totpCode string, remote netip.Addr) (*LoginResult, error) {
	return s.LoginWith(ctx, email, password, totpCode, LoginOptions{Remote: remote})
}

// LoginWith is LoginWithCode with the kind of session to start and what to
// remember of the client (see LoginOptions).
func (s *Service) LoginWith(ctx context.Context, email, password, totpCode string, opt LoginOptions) (*LoginResult, error) {
	remote := opt.Remote
	email = strings.TrimSpace(email)
	if email == "" || password == "" {
		return nil, tenant.Invalid("email", "email and password are required")
	}
	// Counted, and committed, before the password is hashed: parallel
	// guesses all count (see tenant.CountLoginAttempt).
	attempt, err := s.DB.CountLoginAttempt(ctx, tenant.ScopeAuth, "email", email, remote, s.Time())
	if err != nil {
		return nil, err
	}
	if attempt.Wait > 0 {
		wait := time.Duration(math.Ceil(attempt.Wait.Seconds())) * time.Second
		return nil, &tenant.Error{Code: tenant.ELimit, RetryAfter: wait,
			Message: fmt.Sprintf("too many failed logins; try again in %d seconds", int(wait.Seconds()))}
	}
	if err := attempt.Pause(ctx); err != nil {
		return nil, err
	}
	var res *LoginResult
	failed, refused := false, false
	err = s.DB.CrossTenant(ctx, tenant.ScopeAuth, func(tx *sqlx.Tx) error {
		var rows []loginRow
		err := tx.SelectContext(ctx, &rows, `
			SELECT 'USER' AS kind, u.id, u.account_id, u.role, u.name, u.email, u.password_hash,
			       a.ip_allowlist AS account_allowlist, u.ip_allowlist AS user_allowlist
			  FROM users u JOIN accounts a ON a.id = u.account_id
			 WHERE lower(u.email) = lower($1) AND u.deleted_at IS NULL
			UNION ALL
			SELECT 'STAFF', id, NULL, NULL, name, email, password_hash, '{}', '{}' FROM staff WHERE lower(email) = lower($1)`, email)
		if err != nil {
			return tenant.DBError(err)
		}
		hash := ""
		if len(rows) == 1 && rows[0].Hash != nil {
			hash = *rows[0].Hash
		}
		ok, err := tenant.VerifyPassword(ctx, hash, password)
		if err != nil {
			return err
		}
		if !ok {
			failed = true // already counted
			return nil
		}
		r := rows[0]
		if !r.allowedFrom(remote) {
			// Checked after the password, so that only someone who knows it
			// learns of the allowlist; the attempt stays counted as failed.
			refused = true
			return nil
		}
		p := &tenant.Principal{Kind: tenant.PrincipalKind(r.Kind), ID: r.ID, Name: r.Name, Email: r.Email, Addr: remote}
		if r.AccountID != nil {
			p.AccountID, p.Role = *r.AccountID, tenant.Role(*r.Role)
		}
		if p.EnrolOnly, err = s.loginSecondFactor(ctx, tx, p, totpCode); err != nil {
			return err // the attempt stays counted
		}
		if err := attempt.Succeeded(ctx, tx); err != nil {
			return err
		}
		res, err = s.issueToken(ctx, tx, p, opt)
		return err
	})
	if err == nil && failed {
		return nil, errBadLogin
	}
	if err == nil && refused {
		return nil, tenant.ErrAddressNotAllowed
	}
	return res, err
}

// countPasswordCheck counts a check of the caller's own password by a
// logged-in request (changePassword, an email change, disableTotp) as a
// login attempt at their email from their address, before the password is
// hashed: a stolen token gets no more guesses at the password than the login
// form gives (tenant.CountLoginAttempt), and a guesser blocked there is
// blocked here too. field names the password's input field for the LIMIT
// error. passed, called once the password proved right, resets the count
// as a login does.
func (s *Service) countPasswordCheck(ctx context.Context, p *tenant.Principal, field string) (passed func(), err error) {
	attempt, err := s.DB.CountLoginAttempt(ctx, tenant.ScopeAuth, "email", p.Email, p.Addr, s.Time())
	if err != nil {
		return nil, err
	}
	if attempt.Wait > 0 {
		wait := time.Duration(math.Ceil(attempt.Wait.Seconds())) * time.Second
		return nil, &tenant.Error{Code: tenant.ELimit, Field: field, RetryAfter: wait,
			Message: fmt.Sprintf("too many wrong passwords; try again in %d seconds", int(wait.Seconds()))}
	}
	if err := attempt.Pause(ctx); err != nil {
		return nil, err
	}
	return func() {
		_ = s.DB.CrossTenant(ctx, tenant.ScopeAuth, func(tx *sqlx.Tx) error { return attempt.Succeeded(ctx, tx) })
	}, nil
}

var errBadLogin = &tenant.Error{Code: tenant.EUnauthenticated, Field: "password", Message: "the email or password is not correct"}

// newSecret returns a new random token with prefix and its SHA-256, the only
// form in which Skiff stores it.
func newSecret(prefix string) (string, []byte, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, err
	}
	token := prefix + base64.RawURLEncoding.EncodeToString(secret)
	h := sha256.Sum256([]byte(token))
	return token, h[:], nil
}

// issueToken starts an API session for p: a bearer token, or with
// TokenAccessAndRefresh an access token and a refresh token (see sessions.go).
// A session issued enrol-only (p.EnrolOnly, which only Login sets, after the
// password) may turn two-factor on without the password (enrol_grant; see
// ConfirmTotpEnrolment).
func (s *Service) issueToken(ctx context.Context, q tenant.Queryer, p *tenant.Principal, opt LoginOptions) (*LoginResult, error) {
	now := s.Time()
	exp := now.Add(s.TokenTTL)
	var accountID, userID, staffID any
	if p.Kind == tenant.KindStaff {
		staffID = p.ID
	} else {
		accountID, userID = p.AccountID, p.ID
	}
	ip := ""
	if opt.Remote.IsValid() {
		ip = opt.Remote.String()
	}
	ua := clientName(opt.UserAgent)
	if opt.Kind == TokenAccessAndRefresh {
		if err := q.GetContext(ctx, &p.TokenID, `INSERT INTO tokens (hash, kind, account_id, user_id, staff_id, created_at, expires_at, user_agent, ip, last_used_at, last_ip, enrol_grant)
			VALUES (NULL, 'REFRESH', $1, $2, $3, $4, $5, $6, $7, $4, $7, $8) RETURNING id`, accountID, userID, staffID, now, exp, ua, ip, p.EnrolOnly); err != nil {
			return nil, tenant.DBError(err)
		}
		return s.issuePair(ctx, q, p, now)
	}
	token, h, err := newSecret(tokenPrefix)
	if err != nil {
		return nil, err
	}
	if err := q.GetContext(ctx, &p.TokenID, `INSERT INTO tokens (hash, account_id, user_id, staff_id, created_at, expires_at, user_agent, ip, last_used_at, last_ip, enrol_grant)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $5, $8, $9) RETURNING id`, h, accountID, userID, staffID, now, exp, ua, ip, p.EnrolOnly); err != nil {
		return nil, tenant.DBError(err)
	}
	return &LoginResult{Token: token, ExpiresAt: exp, Principal: p}, nil
}

// tokenMatch says which session a presented token belongs to, as a
// condition on tokens t with the token's hash as $1 and the time as $2, or
// "" for a token that cannot be valid: a bearer token is its session's hash,
// an access token one of its session's unexpired access tokens. A refresh
// token is none of these: it only works with RefreshSession.
func tokenMatch(token string) string {
	switch {
	case len(token) > 100:
		return ""
	case strings.HasPrefix(token, tokenPrefix):
		return `t.hash = $1 AND t.kind = 'BEARER'`
	case strings.HasPrefix(token, accessTokenPrefix):
		return `t.id = (SELECT x.token_id FROM access_tokens x WHERE x.hash = $1 AND x.expires_at > $2)`
	}
	return ""
}

// sessionRow is a live session with its principal, as sessionQuery reads it.
type sessionRow struct {
	loginRow
	TokenID    string     `db:"token_id"`
	EnrolOnly  bool       `db:"enrol_only"`
	LastUsedAt *time.Time `db:"last_used_at"`
}

// sessionQuery reads the live session matched by match (see tokenMatch; $2
// is the time): not revoked, not expired, of a live user or a staff member.
func sessionQuery(match string) string {
	return `
			SELECT t.id AS token_id, t.last_used_at,
			       CASE WHEN t.staff_id IS NULL THEN 'USER' ELSE 'STAFF' END AS kind,
			       coalesce(u.id, st.id) AS id, u.account_id, u.role,
			       coalesce(u.name, st.name) AS name, coalesce(u.email, st.email) AS email, NULL::text AS password_hash,
			       (st.id IS NOT NULL OR (u.role IN ('OWNER', 'ADMIN') AND a.require_totp_for_admins))
			         AND NOT EXISTS (SELECT FROM totp z WHERE z.confirmed_at IS NOT NULL
			                            AND (z.user_id = t.user_id OR z.staff_id = t.staff_id)) AS enrol_only,
			       coalesce(a.ip_allowlist, '{}') AS account_allowlist, coalesce(u.ip_allowlist, '{}') AS user_allowlist
			  FROM tokens t
			  LEFT JOIN users u ON u.id = t.user_id AND u.deleted_at IS NULL
			  LEFT JOIN accounts a ON a.id = u.account_id
			  LEFT JOIN staff st ON st.id = t.staff_id
			 WHERE ` + match + ` AND t.revoked_at IS NULL AND t.expires_at > $2
			   AND (u.id IS NOT NULL OR st.id IS NOT NULL)`
}

// principal is the session's principal, presented from remote.
func (r *sessionRow) principal(remote netip.Addr) *tenant.Principal {
	p := &tenant.Principal{Kind: tenant.PrincipalKind(r.Kind), ID: r.ID, Name: r.Name, Email: r.Email, TokenID: r.TokenID, EnrolOnly: r.EnrolOnly, Addr: remote}
	if r.AccountID != nil {
		p.AccountID, p.Role = *r.AccountID, tenant.Role(*r.Role)
	}
	return p
}

// sessionUseGranularity is how stale a session's last_used_at may get: a
// session used again within it is not written again, so a busy client's
// requests cost no writes.
const sessionUseGranularity = time.Minute

// touchSession records that the session r was just used from remote, unless
// it already was within sessionUseGranularity.
func (s *Service) touchSession(ctx context.Context, q tenant.Queryer, r *sessionRow, remote netip.Addr) error {
	now := s.Time()
	if r.LastUsedAt != nil && now.Sub(*r.LastUsedAt) < sessionUseGranularity {
		return nil
	}
	ip := ""
	if remote.IsValid() {
		ip = remote.String()
	}
	_, err := q.ExecContext(ctx, `UPDATE tokens SET last_used_at = $2, last_ip = $3 WHERE id = $1`, r.TokenID, now, ip)
	return tenant.DBError(err)
}

// Authenticate resolves a bearer token or an access token, presented from
// the client address remote, to its principal. Expired, revoked, unknown and
// malformed tokens, tokens of revoked sessions and of deleted users, and
// refresh tokens, all fail alike. A user's token presented from outside
// their account's or their own IP allowlist fails with
// tenant.ErrAddressNotAllowed. The session's "last used" is written at most
// once a minute.
func (s *Service) Authenticate(ctx context.Context, token string, remote netip.Addr) (*tenant.Principal, error) {
	bad := tenant.Errorf(tenant.EUnauthenticated, "the token is not valid or has expired; log in again")
	match := tokenMatch(token)
	if match == "" {
		return nil, bad
	}
	h := sha256.Sum256([]byte(token))
	var r sessionRow
	err := s.DB.CrossTenant(ctx, tenant.ScopeAuth, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &r, sessionQuery(match), h[:], s.Time()); err != nil {
			return tenant.DBError(err)
		}
		if !r.allowedFrom(remote) {
			return nil // refused below; not a use
		}
		return s.touchSession(ctx, tx, &r, remote)
	})
	if tenant.ErrorCode(err) == tenant.ENotFound {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	if !r.allowedFrom(remote) {
		return nil, tenant.ErrAddressNotAllowed
	}
	return r.principal(remote), nil
}

// Logout revokes the token the request came with.
func (s *Service) Logout(ctx context.Context) error {
	p := tenant.PrincipalFrom(ctx)
	if p == nil || p.TokenID == "" {
		return tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	return s.DB.CrossTenant(ctx, tenant.ScopeAuth, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, p.TokenID, s.Time())
		return tenant.DBError(err)
	})
}

// Staff is a support-staff member.
type Staff struct {
	ID        string    `db:"id"`
	Email     string    `db:"email"`
	Name      string    `db:"name"`
	CreatedAt time.Time `db:"created_at"`
}

// CreateStaff adds a support-staff login. Only the system (the admin CLI) or
// existing staff can do it.
func (s *Service) CreateStaff(ctx context.Context, email, name, password string) (*Staff, error) {
	p := tenant.PrincipalFrom(ctx)
	if !tenant.IsSystem(p) && !p.IsStaff() {
		return nil, tenant.Errorf(tenant.EForbidden, "only support staff can add staff")
	}
	email, err := tenant.NormEmail("email", email)
	if err != nil {
		return nil, err
	}
	if name, err = tenant.NormName("name", name, 200); err != nil {
		return nil, err
	}
	hash, err := tenant.HashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	var st Staff
	err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &st, `INSERT INTO staff (email, name, password_hash) VALUES ($1, $2, $3)
			RETURNING id, email, name, created_at`, email, name, hash)
		if err = tenant.DBError(err); tenant.ErrorCode(err) == tenant.EConflict {
			return errEmailInUse
		}
		if err != nil {
			return err
		}
		// Who added a staff login, and when: the staff trail (the first
		// ones come from `skiff admin create-staff`, as the system).
		actor := tenant.ActorOf(ctx)
		_, err = tx.ExecContext(ctx, `INSERT INTO staff_audit_events (actor_kind, actor_id, actor_name, kind, target_id, after)
			VALUES ($1, nullif($2, '')::uuid, $3, 'staff.created', $4, jsonb_build_object('email', $5::text, 'name', $6::text))`,
			actor.Kind, actor.ID, actor.Name, st.ID, st.Email, st.Name)
		return tenant.DBError(err)
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// StaffMember returns a support-staff member by ID, for support staff only;
// to anyone else staff do not exist.
func (s *Service) StaffMember(ctx context.Context, id string) (*Staff, error) {
	if p := tenant.PrincipalFrom(ctx); !p.IsStaff() || !tenant.IsUUID(id) {
		return nil, tenant.NotFound("staff member")
	}
	var st Staff
	err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tenant.NotFoundAs(tenant.DBError(tx.GetContext(ctx, &st, `SELECT id, email, name, created_at FROM staff WHERE id = $1`, id)), "staff member")
	})
	return tenant.Result(&st, err)
}
