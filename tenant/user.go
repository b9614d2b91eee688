package tenant

import (
	"context"
	"strings"
	"time"

	"github.com/lib/pq"
)

// User is a person in an account. Deleted users are kept (soft delete) so they
// can be restored with everything they had, including their SFTP credentials.
type User struct {
	ID            string     `db:"id"`
	AccountID     string     `db:"account_id"`
	Email         string     `db:"email"`
	Name          string     `db:"name"`
	Role          Role       `db:"role"`
	PasswordHash  *string    `db:"password_hash" json:"-"`
	CreatedAt     time.Time  `db:"created_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
	DeletedAt     *time.Time `db:"deleted_at"`
	SFTPEnabled   bool       `db:"sftp_enabled"`
	SFTPEnabledAt *time.Time `db:"sftp_enabled_at"`
	// IPAllowlist is the user's own IP allowlist, on top of the account's
	// (see ParseIPAllowlist); empty restricts nothing.
	IPAllowlist pq.StringArray `db:"ip_allowlist"`
	// LastLoginAt is when the user last logged in, over the API or SFTP (the
	// later of their newest API session's start and their last SFTP login),
	// kept by triggers (migration 00135) for the LAST_LOGIN order; nil if never.
	LastLoginAt *time.Time `db:"last_login_at"`
}

// Deleted reports whether the user is soft-deleted.
func (u *User) Deleted() bool { return u.DeletedAt != nil }

// InvitationPending reports whether the user was invited and has not
// accepted yet: a user created without a password is emailed an invitation
// and sets their first password by accepting it (or by a password reset),
// so "no password yet" is exactly "invitation not accepted", expired or not.
func (u *User) InvitationPending() bool { return u.PasswordHash == nil }

// auditState is what the audit trail records of a user.
func (u *User) AuditState() map[string]any {
	return map[string]any{"email": u.Email, "name": u.Name, "role": u.Role, "sftpEnabled": u.SFTPEnabled, "deleted": u.Deleted()}
}

const UserColumns = `id, account_id, email, name, role, password_hash, created_at, updated_at, deleted_at, sftp_enabled, sftp_enabled_at, ip_allowlist, last_login_at`

// GetUser loads a user of the transaction's account; another account's user is not found.
func GetUser(ctx context.Context, q Queryer, id string, forUpdate bool) (*User, error) {
	if !IsUUID(id) {
		return nil, NotFound("user")
	}
	var u User
	query := `SELECT ` + UserColumns + ` FROM users WHERE id = $1 AND account_id = skiff_account()`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	if err := q.GetContext(ctx, &u, query, id); err != nil {
		return nil, NotFoundAs(DBError(err), "user")
	}
	return &u, nil
}

// NotFoundAs gives a not-found error the name of what was looked for.
func NotFoundAs(err error, what string) error {
	if ErrorCode(err) == ENotFound {
		return NotFound(what)
	}
	return err
}

// RequireAdmin returns the principal if it is an owner or admin of its account.
func RequireAdmin(ctx context.Context) (*Principal, error) {
	p, err := RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != RoleOwner && p.Role != RoleAdmin {
		return nil, Errorf(EForbidden, "only account owners and administrators can do this")
	}
	return p, nil
}

// requireAnotherOwner refuses to remove the last live owner of the account.
func RequireAnotherOwner(ctx context.Context, q Queryer, userID string) error {
	var n int
	// Lock the owners so two admins cannot demote the last two owners at once.
	if err := q.GetContext(ctx, &n, `SELECT count(*) FROM (SELECT id FROM users
		WHERE account_id = skiff_account() AND role = 'OWNER' AND deleted_at IS NULL AND id <> $1 FOR UPDATE) o`, userID); err != nil {
		return DBError(err)
	}
	if n == 0 {
		return Invalid("role", "an account must keep at least one owner; make someone else owner first")
	}
	return nil
}

// UserSorts are the orders of a list of users (in table users): NAME, the
// default, EMAIL, CREATED_AT and LAST_LOGIN, case-insensitively for text,
// ties by ID.
func UserSorts(list string) *Sorts[*User] {
	return &Sorts[*User]{
		List: list,
		Keys: []SortKey[*User]{
			{Field: "NAME", Expr: "lower(name)", Type: "text", Of: func(u *User) string { return strings.ToLower(u.Name) }},
			{Field: "EMAIL", Expr: "lower(email)", Type: "text", Of: func(u *User) string { return strings.ToLower(u.Email) }},
			{Field: "CREATED_AT", Expr: "created_at", Type: "timestamptz", Of: func(u *User) string { return TimeKey(u.CreatedAt) }},
			// Users who never logged in come last in both directions.
			{Field: "LAST_LOGIN", Type: "timestamptz",
				Expr: "coalesce(last_login_at, 'infinity'::timestamptz)", Of: func(u *User) string { return loginKey(u, NoTimeLast) },
				DescExpr: "coalesce(last_login_at, '-infinity'::timestamptz)", DescOf: func(u *User) string { return loginKey(u, NoTimeFirst) }},
		},
		Default: Order{Field: "NAME"},
		ID:      "id",
		IDOf:    func(u *User) string { return u.ID },
	}
}

// loginKey is u's LAST_LOGIN sort key: its last login, or never when it has none.
func loginKey(u *User, never string) string {
	if u.LastLoginAt == nil {
		return never
	}
	return TimeKey(*u.LastLoginAt)
}
