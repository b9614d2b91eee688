package people

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
)

// API sessions. Every login starts one session (a row of tokens), which the
// user can list and revoke, and which every revocation of their tokens
// (logout, password change or reset, deletion) ends. A session is one of:
//   - TokenBearer: one bearer token, valid for TokenTTL (the default);
//   - TokenAccessAndRefresh, for mobile clients: short-lived access tokens
//     (AccessTokenTTL) and a refresh token that RefreshSession exchanges for
//     a new access token and a new refresh token. Each refresh token works
//     once (rotation); one presented a second time was copied, so the whole
//     session is revoked (reuse detection) and its holders must log in again.
//     The session lasts while it is refreshed within TokenTTL.
//
// Tokens are random, shown once and stored only as SHA-256.

// TokenKind is the kind of session a login starts.
type TokenKind string

const (
	TokenBearer           TokenKind = "BEARER"
	TokenAccessAndRefresh TokenKind = "ACCESS_AND_REFRESH"
)

// Token prefixes: a reader of a log or a secret scanner can tell them apart,
// and a refresh token is never taken for an access token.
const (
	accessTokenPrefix  = "skfa_"
	refreshTokenPrefix = "skfr_"
)

// DefaultAccessTokenTTL is how long an access token lasts unless configured.
const DefaultAccessTokenTTL = 15 * time.Minute

// LoginOptions are what a login remembers of its client and which kind of
// session it starts.
type LoginOptions struct {
	Kind      TokenKind // "" is TokenBearer
	Remote    netip.Addr
	UserAgent string // the client's User-Agent, shown in its session
}

// maxClientName bounds the user agent a session keeps.
const maxClientName = 256

// clientName is a user agent as a session keeps it: valid text, bounded.
func clientName(ua string) string {
	ua = strings.ToValidUTF8(strings.TrimSpace(ua), "?")
	for len(ua) > maxClientName {
		_, n := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-n]
	}
	return ua
}

func (s *Service) accessTTL() time.Duration {
	if s.AccessTokenTTL > 0 {
		return s.AccessTokenTTL
	}
	return DefaultAccessTokenTTL
}

// issuePair gives the REFRESH session p.TokenID a new access token and a new
// refresh token, and moves its expiry to TokenTTL from now.
func (s *Service) issuePair(ctx context.Context, q tenant.Queryer, p *tenant.Principal, now time.Time) (*LoginResult, error) {
	access, ah, err := newSecret(accessTokenPrefix)
	if err != nil {
		return nil, err
	}
	refresh, rh, err := newSecret(refreshTokenPrefix)
	if err != nil {
		return nil, err
	}
	var accountID any
	if p.AccountID != "" {
		accountID = p.AccountID
	}
	res := &LoginResult{Token: access, ExpiresAt: now.Add(s.accessTTL()), Principal: p,
		RefreshToken: refresh, RefreshExpiresAt: now.Add(s.TokenTTL)}
	if res.ExpiresAt.After(res.RefreshExpiresAt) {
		res.ExpiresAt = res.RefreshExpiresAt
	}
	_, err = q.ExecContext(ctx, `WITH a AS (INSERT INTO access_tokens (hash, token_id, account_id, created_at, expires_at) VALUES ($1, $3, $4, $5, $6)),
		r AS (INSERT INTO refresh_tokens (hash, token_id, account_id, created_at) VALUES ($2, $3, $4, $5))
		UPDATE tokens SET expires_at = $7 WHERE id = $3`, ah, rh, p.TokenID, accountID, now, res.ExpiresAt, res.RefreshExpiresAt)
	if err != nil {
		return nil, tenant.DBError(err)
	}
	return res, nil
}

var errBadRefresh = &tenant.Error{Code: tenant.EUnauthenticated, Field: "refreshToken",
	Message: "the refresh token is not valid, was already used or has expired; log in again"}

// RefreshSession exchanges a refresh token for a new access token and a new
// refresh token of the same session (the old refresh token stops working).
// A refresh token that was already used revokes its whole session: someone
// else holds a copy. Every refusal is the same UNAUTHENTICATED error (field
// refreshToken); a user's refresh from outside their IP allowlists is
// tenant.ErrAddressNotAllowed. Two refreshes racing with one token: the
// second is a reuse.
func (s *Service) RefreshSession(ctx context.Context, refreshToken string, opt LoginOptions) (*LoginResult, error) {
	if !strings.HasPrefix(refreshToken, refreshTokenPrefix) || len(refreshToken) > 100 {
		return nil, errBadRefresh
	}
	h := sha256.Sum256([]byte(refreshToken))
	now := s.Time()
	var (
		res     *LoginResult
		reused  *sessionOwner
		refused bool
	)
	err := s.DB.CrossTenant(ctx, tenant.ScopeAuth, func(tx *sqlx.Tx) error {
		var rt struct {
			TokenID string     `db:"token_id"`
			UsedAt  *time.Time `db:"used_at"`
			sessionOwner
		}
		err := tx.GetContext(ctx, &rt, `SELECT r.token_id, r.used_at, t.account_id, t.user_id, t.staff_id
			FROM refresh_tokens r JOIN tokens t ON t.id = r.token_id WHERE r.hash = $1 FOR UPDATE OF r`, h[:])
		if err != nil {
			return tenant.DBError(err)
		}
		if rt.UsedAt != nil {
			rt.sessionOwner.TokenID = rt.TokenID
			reused = &rt.sessionOwner
			return nil
		}
		var r sessionRow
		if err := tx.GetContext(ctx, &r, sessionQuery(`t.id = $1 AND t.kind = 'REFRESH'`), rt.TokenID, now); err != nil {
			return tenant.DBError(err)
		}
		if !r.allowedFrom(opt.Remote) {
			refused = true
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1`, h[:], now); err != nil {
			return tenant.DBError(err)
		}
		r.LastUsedAt = nil // a refresh is always a use
		if err := s.touchSession(ctx, tx, &r, opt.Remote); err != nil {
			return err
		}
		res, err = s.issuePair(ctx, tx, r.principal(opt.Remote), now)
		return err
	})
	switch {
	case tenant.ErrorCode(err) == tenant.ENotFound:
		return nil, errBadRefresh
	case err != nil:
		return nil, err
	case refused:
		return nil, tenant.ErrAddressNotAllowed
	case reused != nil:
		if err := s.revokeReused(ctx, reused); err != nil {
			return nil, err
		}
		return nil, errBadRefresh
	}
	return res, nil
}

// sessionOwner is whose a session is.
type sessionOwner struct {
	TokenID   string  `db:"-"`
	AccountID *string `db:"account_id"`
	UserID    *string `db:"user_id"`
	StaffID   *string `db:"staff_id"`
}

// revokeReused revokes the session of a refresh token presented again, and
// records it in the owner's audit trail (the system acting).
func (s *Service) revokeReused(ctx context.Context, o *sessionOwner) error {
	ctx = tenant.WithPrincipal(ctx, nil)
	const reason = "a used refresh token was presented again"
	return s.inOwnerScope(ctx, o.AccountID, func(q tenant.Queryer) error {
		var sess []*APISession
		if err := q.SelectContext(ctx, &sess, `UPDATE tokens SET revoked_at = $2, revoked_reason = $3
			WHERE id = $1 AND revoked_at IS NULL RETURNING `+sessionColumns, o.TokenID, s.Time(), reason); err != nil {
			return tenant.DBError(err)
		}
		if len(sess) == 0 {
			return nil // already revoked
		}
		return s.auditSession(ctx, q, o.AccountID, audit.Event{Kind: audit.APISessionRefreshReused,
			TargetKind: "ApiSession", TargetID: sess[0].ID, Before: sess[0].auditState(), After: map[string]any{"revoked": reason}})
	})
}

// inOwnerScope runs fn where a session's owner's rows and audit trail are:
// the user's account, or the staff scope for a staff member's session.
func (s *Service) inOwnerScope(ctx context.Context, accountID *string, fn func(q tenant.Queryer) error) error {
	if accountID != nil {
		return s.InAccount(ctx, *accountID, fn)
	}
	return s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return fn(tx) })
}

// auditSession records a change to a session in its owner's audit trail:
// the account's, or for a staff member's session the staff trail.
func (s *Service) auditSession(ctx context.Context, q tenant.Queryer, accountID *string, ev audit.Event) error {
	if accountID != nil {
		return audit.Record(ctx, q, *accountID, ev)
	}
	return audit.RecordStaff(ctx, q, ev)
}

// APISession is one of a principal's API sessions (one login).
type APISession struct {
	ID         string     `db:"id"`
	Kind       string     `db:"kind"` // BEARER or REFRESH
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	ExpiresAt  time.Time  `db:"expires_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
	UserAgent  string     `db:"user_agent"`
	IP         string     `db:"ip"`      // where it logged in from
	LastIP     string     `db:"last_ip"` // where it was last used from
	// Current is true for the session the request came with.
	Current bool `db:"-"`
}

func (a *APISession) auditState() map[string]any {
	return map[string]any{"kind": a.Kind, "createdAt": a.CreatedAt, "userAgent": a.UserAgent, "ip": a.IP}
}

const sessionColumns = `id, kind, created_at, last_used_at, expires_at, revoked_at, user_agent, ip, last_ip`

// MaxListedSessions bounds APISessions: the newest this many.
const MaxListedSessions = 100

// ownerFilter is the condition on tokens naming p's sessions, with p.ID as $1.
func ownerFilter(p *tenant.Principal) string {
	if p.IsStaff() {
		return `staff_id = $1`
	}
	return `user_id = $1`
}

// requireSessionOwner is the principal whose sessions a request may list
// and revoke: its own, only.
func requireSessionOwner(ctx context.Context) (*tenant.Principal, *string, error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil || tenant.IsSystem(p) || p.ID == "" {
		return nil, nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	if p.IsStaff() {
		return p, nil, nil
	}
	return p, &p.AccountID, nil
}

// APISessions lists the caller's live API sessions (not revoked, not
// expired), newest first, at most MaxListedSessions; the one the request
// came with has Current set. Everyone sees only their own.
func (s *Service) APISessions(ctx context.Context) ([]*APISession, error) {
	return s.liveSessions(ctx, "")
}

// APISession is one of the caller's live API sessions, by ID (`node(id:)`):
// another principal's session, or one revoked or expired, is NOT_FOUND,
// like an unknown ID.
func (s *Service) APISession(ctx context.Context, id string) (*APISession, error) {
	if !tenant.IsUUID(id) {
		return nil, tenant.NotFound("API session")
	}
	out, err := s.liveSessions(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, tenant.NotFound("API session")
	}
	return out[0], nil
}

// liveSessions reads the caller's live sessions, newest first: all of them
// (at most MaxListedSessions), or the one with ID id when id is not empty.
func (s *Service) liveSessions(ctx context.Context, id string) ([]*APISession, error) {
	p, accountID, err := requireSessionOwner(ctx)
	if err != nil {
		return nil, err
	}
	var out []*APISession
	err = s.inOwnerScope(ctx, accountID, func(q tenant.Queryer) error {
		return tenant.DBError(q.SelectContext(ctx, &out, `SELECT `+sessionColumns+` FROM tokens
			WHERE `+ownerFilter(p)+` AND revoked_at IS NULL AND expires_at > $2 AND ($4 = '' OR id::text = $4)
			ORDER BY created_at DESC, id DESC LIMIT $3`, p.ID, s.Time(), MaxListedSessions, id))
	})
	for _, a := range out {
		a.Current = a.ID == p.TokenID
	}
	return out, err
}

// RevokeAPISession ends one of the caller's API sessions: its bearer token,
// or its access and refresh tokens, stop working at once. Revoking the
// current session is logging out. Another principal's session, or one
// already revoked or expired, is NOT_FOUND. Recorded in the audit trail.
func (s *Service) RevokeAPISession(ctx context.Context, id string) (*APISession, error) {
	p, accountID, err := requireSessionOwner(ctx)
	if err != nil {
		return nil, err
	}
	if !tenant.IsUUID(id) {
		return nil, tenant.NotFound("API session")
	}
	var out []*APISession
	err = s.inOwnerScope(ctx, accountID, func(q tenant.Queryer) error {
		now := s.Time()
		if err := q.SelectContext(ctx, &out, `UPDATE tokens SET revoked_at = $3, revoked_reason = 'revoked by its owner'
			WHERE `+ownerFilter(p)+` AND id = $2 AND revoked_at IS NULL AND expires_at > $3 RETURNING `+sessionColumns, p.ID, id, now); err != nil {
			return tenant.DBError(err)
		}
		if len(out) == 0 {
			return tenant.NotFound("API session")
		}
		return s.auditSession(ctx, q, accountID, audit.Event{Kind: audit.APISessionRevoked, TargetKind: "ApiSession", TargetID: id,
			Before: out[0].auditState()})
	})
	if err != nil {
		return nil, err
	}
	out[0].Current = out[0].ID == p.TokenID
	return out[0], nil
}

// RevokeOtherAPISessions ends every API session of the caller but the one
// the request came with, and says how many it ended. Recorded in the audit
// trail (one event, with the count).
func (s *Service) RevokeOtherAPISessions(ctx context.Context) (int, error) {
	p, accountID, err := requireSessionOwner(ctx)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.inOwnerScope(ctx, accountID, func(q tenant.Queryer) error {
		now := s.Time()
		if err := q.GetContext(ctx, &n, `WITH r AS (UPDATE tokens SET revoked_at = $3, revoked_reason = 'revoked by its owner'
			WHERE `+ownerFilter(p)+` AND id::text <> $2 AND revoked_at IS NULL AND expires_at > $3 RETURNING 1)
			SELECT count(*) FROM r`, p.ID, p.TokenID, now); err != nil {
			return tenant.DBError(err)
		}
		if n == 0 {
			return nil
		}
		target := "User"
		if p.IsStaff() {
			target = "Staff"
		}
		return s.auditSession(ctx, q, accountID, audit.Event{Kind: audit.APISessionsRevokedOthers, TargetKind: target, TargetID: p.ID,
			After: map[string]any{"revoked": n}})
	})
	return n, err
}
