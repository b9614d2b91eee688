package tenant

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math"
	"net/netip"
	"strings"
	"time"
)

// tokenPrefix makes Skiff tokens recognisable in logs and secret scanners.
const tokenPrefix = "skf_"

// LoginResult is what a successful login returns.
type LoginResult struct {
	Token     string // shown once; only its hash is stored
	ExpiresAt time.Time
	Principal *Principal
}

type loginRow struct {
	Kind      string  `db:"kind"`
	ID        string  `db:"id"`
	AccountID *string `db:"account_id"`
	Role      *string `db:"role"`
	Name      string  `db:"name"`
	Email     string  `db:"email"`
	Hash      *string `db:"password_hash"`
}

// Login checks an email and password (of a user or a staff member) and
// returns a new bearer token. Every failure says the same thing; repeated
// failures for one email or from one address are slowed down.
func (s *Service) Login(ctx context.Context, email, password string, remote netip.Addr) (*LoginResult, error) {
	email = strings.TrimSpace(email)
	if email == "" || password == "" {
		return nil, Invalid("email", "email and password are required")
	}
	keys := throttleKeys("email", email, remote)
	var res *LoginResult
	failed := false
	err := s.DB.CrossTenant(ctx, ScopeAuth, func(tx *sqlxTx) error {
		if wait, err := loginWait(ctx, tx, keys, s.now()); err != nil {
			return err
		} else if wait > 0 {
			return Errorf(ELimit, "too many failed logins; try again in %d seconds", int(math.Ceil(wait.Seconds())))
		}
		var rows []loginRow
		err := tx.SelectContext(ctx, &rows, `
			SELECT 'USER' AS kind, id, account_id, role, name, email, password_hash FROM users
			 WHERE lower(email) = lower($1) AND deleted_at IS NULL
			UNION ALL
			SELECT 'STAFF', id, NULL, NULL, name, email, password_hash FROM staff WHERE lower(email) = lower($1)`, email)
		if err != nil {
			return dbError(err)
		}
		hash := ""
		if len(rows) == 1 && rows[0].Hash != nil {
			hash = *rows[0].Hash
		}
		ok, err := VerifyPassword(ctx, hash, password)
		if err != nil {
			return err
		}
		if !ok {
			// Commit the failure count, then report the failure.
			failed = true
			return recordLoginFailure(ctx, tx, keys, s.now())
		}
		r := rows[0]
		p := &Principal{Kind: PrincipalKind(r.Kind), ID: r.ID, Name: r.Name, Email: r.Email}
		if r.AccountID != nil {
			p.AccountID, p.Role = *r.AccountID, Role(*r.Role)
		}
		if err := clearLoginFailures(ctx, tx, keys); err != nil {
			return err
		}
		res, err = s.issueToken(ctx, tx, p)
		return err
	})
	if err == nil && failed {
		return nil, errBadLogin
	}
	return res, err
}

var errBadLogin = &Error{Code: EUnauthenticated, Field: "password", Message: "the email or password is not correct"}

func (s *Service) issueToken(ctx context.Context, q Queryer, p *Principal) (*LoginResult, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	h := sha256.Sum256([]byte(token))
	exp := s.now().Add(s.TokenTTL)
	var accountID, userID, staffID any
	if p.Kind == KindStaff {
		staffID = p.ID
	} else {
		accountID, userID = p.AccountID, p.ID
	}
	if err := q.GetContext(ctx, &p.TokenID, `INSERT INTO tokens (hash, account_id, user_id, staff_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, h[:], accountID, userID, staffID, s.now(), exp); err != nil {
		return nil, dbError(err)
	}
	return &LoginResult{Token: token, ExpiresAt: exp, Principal: p}, nil
}

// Authenticate resolves a bearer token to its principal. Expired, revoked,
// unknown and malformed tokens, and tokens of deleted users, all fail alike.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	bad := Errorf(EUnauthenticated, "the token is not valid or has expired; log in again")
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 100 {
		return nil, bad
	}
	h := sha256.Sum256([]byte(token))
	var rows []loginRow
	var tokenID string
	err := s.DB.CrossTenant(ctx, ScopeAuth, func(tx *sqlxTx) error {
		var r struct {
			loginRow
			TokenID string `db:"token_id"`
		}
		err := tx.GetContext(ctx, &r, `
			SELECT t.id AS token_id,
			       CASE WHEN t.staff_id IS NULL THEN 'USER' ELSE 'STAFF' END AS kind,
			       coalesce(u.id, st.id) AS id, u.account_id, u.role,
			       coalesce(u.name, st.name) AS name, coalesce(u.email, st.email) AS email, NULL::text AS password_hash
			  FROM tokens t
			  LEFT JOIN users u ON u.id = t.user_id AND u.deleted_at IS NULL
			  LEFT JOIN staff st ON st.id = t.staff_id
			 WHERE t.hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2
			   AND (u.id IS NOT NULL OR st.id IS NOT NULL)`, h[:], s.now())
		if err != nil {
			return dbError(err)
		}
		rows, tokenID = []loginRow{r.loginRow}, r.TokenID
		return nil
	})
	if ErrorCode(err) == ENotFound {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	r := rows[0]
	p := &Principal{Kind: PrincipalKind(r.Kind), ID: r.ID, Name: r.Name, Email: r.Email, TokenID: tokenID}
	if r.AccountID != nil {
		p.AccountID, p.Role = *r.AccountID, Role(*r.Role)
	}
	return p, nil
}

// Logout revokes the token the request came with.
func (s *Service) Logout(ctx context.Context) error {
	p := PrincipalFrom(ctx)
	if p == nil || p.TokenID == "" {
		return Errorf(EUnauthenticated, "log in first")
	}
	return s.DB.CrossTenant(ctx, ScopeAuth, func(tx *sqlxTx) error {
		_, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, p.TokenID, s.now())
		return dbError(err)
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
	p := PrincipalFrom(ctx)
	if !isSystem(p) && !p.IsStaff() {
		return nil, Errorf(EForbidden, "only support staff can add staff")
	}
	email, err := normEmail("email", email)
	if err != nil {
		return nil, err
	}
	if name, err = normName("name", name, 200); err != nil {
		return nil, err
	}
	hash, err := HashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	var st Staff
	err = s.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error {
		err := tx.GetContext(ctx, &st, `INSERT INTO staff (email, name, password_hash) VALUES ($1, $2, $3)
			RETURNING id, email, name, created_at`, email, name, hash)
		if err = dbError(err); ErrorCode(err) == EConflict {
			return &Error{Code: EConflict, Field: "email", Message: "a staff member with this email already exists"}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}
