package tenant

import (
	"context"
	"strings"
	"time"
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
}

// Deleted reports whether the user is soft-deleted.
func (u *User) Deleted() bool { return u.DeletedAt != nil }

// auditState is what the audit trail records of a user.
func (u *User) auditState() map[string]any {
	return map[string]any{"email": u.Email, "name": u.Name, "role": u.Role, "sftpEnabled": u.SFTPEnabled, "deleted": u.Deleted()}
}

const userColumns = `id, account_id, email, name, role, password_hash, created_at, updated_at, deleted_at, sftp_enabled, sftp_enabled_at`

// getUser loads a user of the transaction's account; another account's user is not found.
func getUser(ctx context.Context, q Queryer, id string, forUpdate bool) (*User, error) {
	if !isUUID(id) {
		return nil, NotFound("user")
	}
	var u User
	query := `SELECT ` + userColumns + ` FROM users WHERE id = $1 AND account_id = skiff_account()`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	if err := q.GetContext(ctx, &u, query, id); err != nil {
		return nil, notFoundAs(dbError(err), "user")
	}
	return &u, nil
}

// notFoundAs gives a not-found error the name of what was looked for.
func notFoundAs(err error, what string) error {
	if ErrorCode(err) == ENotFound {
		return NotFound(what)
	}
	return err
}

// UserFilter narrows account.users.
type UserFilter struct {
	Search      string // in name or email
	Role        Role
	SFTPEnabled *bool
	Deleted     DeletedFilter
}

// DeletedFilter picks live users, deleted users or both.
type DeletedFilter string

const (
	LiveOnly    DeletedFilter = "LIVE"
	DeletedOnly DeletedFilter = "DELETED"
	AnyDeleted  DeletedFilter = "ALL"
)

// User returns a user the principal may see: admins see anyone in their
// account (deleted users too), users see themselves, staff see anyone.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, Errorf(EUnauthenticated, "log in first")
	}
	if p.IsStaff() {
		var u *User
		err := s.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error {
			if !isUUID(id) {
				return NotFound("user")
			}
			var x User
			if err := tx.GetContext(ctx, &x, `SELECT `+userColumns+` FROM users WHERE id = $1`, id); err != nil {
				return notFoundAs(dbError(err), "user")
			}
			u = &x
			return nil
		})
		return u, err
	}
	if !p.IsAdmin(p.AccountID) && p.ID != id {
		return nil, NotFound("user")
	}
	var u *User
	err := s.inAccount(ctx, p.AccountID, func(q Queryer) error {
		var err error
		u, err = getUser(ctx, q, id, false)
		return err
	})
	if err == nil && u.Deleted() && !p.IsAdmin(p.AccountID) {
		return nil, NotFound("user")
	}
	return result(u, err)
}

// UsersByID loads users of an account in one query, for dataloaders (a page
// of project folders' creators). Users the principal may not see (as User
// decides) are absent from the map.
func (s *Service) UsersByID(ctx context.Context, accountID string, ids []string) (map[string]*User, error) {
	p := PrincipalFrom(ctx)
	out := make(map[string]*User, len(ids))
	if !p.InAccount(accountID) && !p.IsStaff() {
		return out, nil
	}
	admin := p.IsStaff() || p.IsAdmin(accountID)
	err := s.inAccount(ctx, accountID, func(q Queryer) error {
		var users []*User
		if err := q.SelectContext(ctx, &users, `SELECT `+userColumns+` FROM users WHERE id = ANY($1::uuid[])`, uuidArray(ids)); err != nil {
			return dbError(err)
		}
		for _, u := range users {
			if admin || (u.ID == p.ID && !u.Deleted()) {
				out[u.ID] = u
			}
		}
		return nil
	})
	return out, err
}

// Users lists an account's users. Admins and staff see everyone (deleted too,
// when asked); a plain user sees only themselves.
func (s *Service) Users(ctx context.Context, accountID string, f UserFilter, page Page) (*Connection[*User], error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, Errorf(EUnauthenticated, "log in first")
	}
	if !p.IsStaff() && !p.InAccount(accountID) {
		return nil, NotFound("account")
	}
	limit, afterKey, afterID, err := keyKeyset(page)
	if err != nil {
		return nil, err
	}
	if f.Role != "" && !f.Role.Valid() {
		return nil, Invalid("role", "unknown role %q", f.Role)
	}
	var where []string
	args := []any{}
	arg := func(v any) string { args = append(args, v); return "$" + itoa(len(args)) }
	switch f.Deleted {
	case "", LiveOnly:
		where = append(where, "deleted_at IS NULL")
	case DeletedOnly:
		where = append(where, "deleted_at IS NOT NULL")
	case AnyDeleted:
	default:
		return nil, Invalid("deleted", "unknown deleted filter %q", f.Deleted)
	}
	if !p.IsStaff() && !p.IsAdmin(accountID) {
		where = append(where, "id = "+arg(p.ID))
	}
	if strings.TrimSpace(f.Search) != "" {
		pat := arg(likePattern(f.Search))
		where = append(where, "(name ILIKE "+pat+" OR email ILIKE "+pat+")")
	}
	if f.Role != "" {
		where = append(where, "role = "+arg(string(f.Role)))
	}
	if f.SFTPEnabled != nil {
		where = append(where, "sftp_enabled = "+arg(*f.SFTPEnabled))
	}
	if afterID != "" {
		where = append(where, "(lower(name), id) > ("+arg(afterKey)+", "+arg(afterID)+"::uuid)")
	}
	where = append(where, "account_id = "+arg(accountID))
	query := `SELECT ` + userColumns + ` FROM users WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY lower(name), id LIMIT ` + arg(limit+1)
	var conn *Connection[*User]
	run := func(q Queryer) error {
		var users []*User
		if err := q.SelectContext(ctx, &users, query, args...); err != nil {
			return dbError(err)
		}
		conn = keyPage(users, limit, afterID != "", func(u *User) (string, string) { return strings.ToLower(u.Name), u.ID })
		return nil
	}
	if p.IsStaff() {
		err = s.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error { return run(tx) })
	} else {
		err = s.inAccount(ctx, accountID, run)
	}
	return result(conn, err)
}

// CreateUserInput is what an admin gives to add a user.
type CreateUserInput struct {
	Email       string
	Name        string
	Role        Role   // USER when empty
	Password    string // optional initial password
	SFTPEnabled bool
	// CustomSFTPLogin, when set, needs SFTPEnabled and a dedicated IP; see SetCustomSFTPLogin.
	CustomSFTPLogin string
}

// requireAdmin returns the principal if it is an owner or admin of its account.
func requireAdmin(ctx context.Context) (*Principal, error) {
	p, err := RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != RoleOwner && p.Role != RoleAdmin {
		return nil, Errorf(EForbidden, "only account owners and administrators can do this")
	}
	return p, nil
}

// CreateUser adds a user to the principal's account. Owners and admins only;
// only owners can create other owners.
func (s *Service) CreateUser(ctx context.Context, in CreateUserInput) (*User, error) {
	p, err := requireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	var u *User
	err = s.inAccount(ctx, p.AccountID, func(q Queryer) error {
		var err error
		u, err = s.createUserTx(ctx, q, p, in)
		return err
	})
	return result(u, err)
}

func (s *Service) createUserTx(ctx context.Context, q Queryer, p *Principal, in CreateUserInput) (*User, error) {
	email, err := normEmail("email", in.Email)
	if err != nil {
		return nil, err
	}
	name, err := normName("name", in.Name, 200)
	if err != nil {
		return nil, err
	}
	role := in.Role
	if role == "" {
		role = RoleUser
	}
	if !role.Valid() {
		return nil, Invalid("role", "unknown role %q", role)
	}
	if role == RoleOwner && p.Role != RoleOwner {
		return nil, Invalid("role", "only an owner can make another owner")
	}
	var hash *string
	if in.Password != "" {
		h, err := HashPassword(ctx, in.Password)
		if err != nil {
			return nil, err
		}
		hash = &h
	}
	u := &User{}
	err = q.GetContext(ctx, u, `INSERT INTO users (account_id, email, name, role, password_hash, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING `+userColumns,
		p.AccountID, email, name, role, hash, s.now())
	if err != nil {
		if err = dbError(err); ErrorCode(err) == EConflict {
			return nil, &Error{Code: EConflict, Field: "email", Message: "a user with this email already exists"}
		}
		return nil, err
	}
	if err := Audit(ctx, q, p.AccountID, AuditEvent{Kind: "user.created", TargetKind: "User", TargetID: u.ID, After: u.auditState()}); err != nil {
		return nil, err
	}
	if in.Password == "" {
		// No password: the user sets their own through an emailed invitation.
		if err := s.sendInvitationTx(ctx, q, u); err != nil {
			return nil, err
		}
	}
	if in.CustomSFTPLogin != "" {
		// Before SFTP is turned on, so that the credentials email names it.
		if err := s.setCustomLoginTx(ctx, q, u, in.CustomSFTPLogin, "customSftpLogin", in.SFTPEnabled); err != nil {
			return nil, err
		}
	}
	if in.SFTPEnabled {
		if err := s.setSFTPAccessTx(ctx, q, u, true); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// UpdateUserInput changes a user; nil fields stay as they are.
type UpdateUserInput struct {
	ID          string
	Email       *string
	Name        *string
	Role        *Role
	SFTPEnabled *bool
	// CustomSFTPLogin sets the user's custom SFTP login; "" removes it. See SetCustomSFTPLogin.
	CustomSFTPLogin *string
}

// UpdateUser changes a user. Admins change anyone in their account except that
// only owners change an owner or make one; users change their own name and email.
// An account always keeps at least one owner.
func (s *Service) UpdateUser(ctx context.Context, in UpdateUserInput) (*User, error) {
	p, err := RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	admin := p.IsAdmin(p.AccountID)
	if !admin && p.ID != in.ID {
		return nil, NotFound("user")
	}
	var u *User
	err = s.inAccount(ctx, p.AccountID, func(q Queryer) error {
		var err error
		if u, err = getUser(ctx, q, in.ID, true); err != nil {
			return err
		}
		if u.Deleted() {
			return Errorf(EConflict, "this user is deleted; restore them first")
		}
		before := u.auditState()
		if !admin && (in.Role != nil || in.SFTPEnabled != nil || in.CustomSFTPLogin != nil) {
			return Errorf(EForbidden, "only account owners and administrators can change roles and SFTP access")
		}
		if u.Role == RoleOwner && p.Role != RoleOwner && (in.Role != nil || in.Email != nil || in.Name != nil) {
			return Errorf(EForbidden, "only an owner can change an owner")
		}
		if in.Email != nil {
			if u.Email, err = normEmail("email", *in.Email); err != nil {
				return err
			}
		}
		if in.Name != nil {
			if u.Name, err = normName("name", *in.Name, 200); err != nil {
				return err
			}
		}
		if in.Role != nil && *in.Role != u.Role {
			if !in.Role.Valid() {
				return Invalid("role", "unknown role %q", *in.Role)
			}
			if *in.Role == RoleOwner && p.Role != RoleOwner {
				return Invalid("role", "only an owner can make another owner")
			}
			if u.Role == RoleOwner {
				if err := requireAnotherOwner(ctx, q, u.ID); err != nil {
					return err
				}
			}
			u.Role = *in.Role
		}
		err = q.GetContext(ctx, u, `UPDATE users SET email = $2, name = $3, role = $4, updated_at = $5
			WHERE id = $1 RETURNING `+userColumns, u.ID, u.Email, u.Name, u.Role, s.now())
		if err != nil {
			if err = dbError(err); ErrorCode(err) == EConflict {
				return &Error{Code: EConflict, Field: "email", Message: "a user with this email already exists"}
			}
			return err
		}
		if in.CustomSFTPLogin != nil {
			// Before SFTP is turned on, so that the credentials email names it.
			sftpAfter := u.SFTPEnabled
			if in.SFTPEnabled != nil {
				sftpAfter = *in.SFTPEnabled
			}
			if err := s.setCustomLoginTx(ctx, q, u, *in.CustomSFTPLogin, "customSftpLogin", sftpAfter); err != nil {
				return err
			}
		}
		if in.SFTPEnabled != nil && *in.SFTPEnabled != u.SFTPEnabled {
			if err := s.setSFTPAccessTx(ctx, q, u, *in.SFTPEnabled); err != nil {
				return err
			}
		}
		return Audit(ctx, q, p.AccountID, AuditEvent{Kind: "user.updated", TargetKind: "User", TargetID: u.ID, Before: before, After: u.auditState()})
	})
	if err == nil && in.SFTPEnabled != nil && !*in.SFTPEnabled {
		s.endSessions(u.AccountID, u.ID)
	}
	return result(u, err)
}

// requireAnotherOwner refuses to remove the last live owner of the account.
func requireAnotherOwner(ctx context.Context, q Queryer, userID string) error {
	var n int
	// Lock the owners so two admins cannot demote the last two owners at once.
	if err := q.GetContext(ctx, &n, `SELECT count(*) FROM (SELECT id FROM users
		WHERE account_id = skiff_account() AND role = 'OWNER' AND deleted_at IS NULL AND id <> $1 FOR UPDATE) o`, userID); err != nil {
		return dbError(err)
	}
	if n == 0 {
		return Invalid("role", "an account must keep at least one owner; make someone else owner first")
	}
	return nil
}

// changeUser is the frame of an owner's or administrator's change to one
// user of their account: it checks the role, locks the user's row in the
// account's transaction, runs change, and returns the user as changed (nil
// if anything failed, in which case nothing was saved).
func (s *Service) changeUser(ctx context.Context, userID string, change func(p *Principal, q Queryer, u *User) error) (*User, error) {
	p, err := requireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	var u *User
	err = s.inAccount(ctx, p.AccountID, func(q Queryer) error {
		var err error
		if u, err = getUser(ctx, q, userID, true); err != nil {
			return err
		}
		return change(p, q, u)
	})
	return result(u, err)
}

// DeleteUser soft-deletes a user: they can no longer log in (web or SFTP),
// their tokens are revoked, their SFTP licence is freed and their live SFTP
// sessions end. Nothing they own is removed, so RestoreUser brings it all back.
func (s *Service) DeleteUser(ctx context.Context, id string) (*User, error) {
	u, err := s.changeUser(ctx, id, func(p *Principal, q Queryer, u *User) error {
		if u.Deleted() {
			return Errorf(EConflict, "this user is already deleted")
		}
		if u.ID == p.ID {
			return Invalid("id", "you cannot delete yourself")
		}
		if u.Role == RoleOwner {
			if p.Role != RoleOwner {
				return Errorf(EForbidden, "only an owner can delete an owner")
			}
			if err := requireAnotherOwner(ctx, q, u.ID); err != nil {
				return err
			}
		}
		before := u.auditState()
		if err := q.GetContext(ctx, u, `UPDATE users SET deleted_at = $2, updated_at = $2 WHERE id = $1 RETURNING `+userColumns, u.ID, s.now()); err != nil {
			return dbError(err)
		}
		if _, err := q.ExecContext(ctx, `UPDATE tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, u.ID, s.now()); err != nil {
			return dbError(err)
		}
		return Audit(ctx, q, p.AccountID, AuditEvent{Kind: "user.deleted", TargetKind: "User", TargetID: u.ID, Before: before, After: u.auditState()})
	})
	if err == nil {
		s.endSessions(u.AccountID, u.ID)
	}
	return u, err
}

// RestoreUser brings back a deleted user with their keys and SFTP credentials.
// If they had SFTP access, restoring takes a licence again, and fails with a
// user error when none is available.
func (s *Service) RestoreUser(ctx context.Context, id string) (*User, error) {
	return s.changeUser(ctx, id, func(p *Principal, q Queryer, u *User) error {
		if !u.Deleted() {
			return Errorf(EConflict, "this user is not deleted")
		}
		if u.Role == RoleOwner && p.Role != RoleOwner {
			return Errorf(EForbidden, "only an owner can restore an owner")
		}
		before := u.auditState()
		if err := s.restoreSFTPAccessTx(ctx, q, u); err != nil {
			return err
		}
		err := q.GetContext(ctx, u, `UPDATE users SET deleted_at = NULL, updated_at = $2 WHERE id = $1 RETURNING `+userColumns, u.ID, s.now())
		if err != nil {
			if err = dbError(err); ErrorCode(err) == EConflict {
				return &Error{Code: EConflict, Field: "id", Message: "another user now has this user's email; change theirs first"}
			}
			return err
		}
		return Audit(ctx, q, p.AccountID, AuditEvent{Kind: "user.restored", TargetKind: "User", TargetID: u.ID, Before: before, After: u.auditState()})
	})
}

// ChangePassword changes the principal's own password after checking the current one.
func (s *Service) ChangePassword(ctx context.Context, current, next string) error {
	p, err := RequireUser(ctx)
	if err != nil {
		return err
	}
	if err := ValidatePassword(next); err != nil {
		return Invalid("newPassword", "%s", ErrorMessage(err))
	}
	return s.inAccount(ctx, p.AccountID, func(q Queryer) error {
		u, err := getUser(ctx, q, p.ID, true)
		if err != nil {
			return err
		}
		hash := ""
		if u.PasswordHash != nil {
			hash = *u.PasswordHash
		}
		ok, err := VerifyPassword(ctx, hash, current)
		if err != nil {
			return err
		}
		if !ok {
			return Invalid("currentPassword", "the current password is not correct")
		}
		h, err := HashPassword(ctx, next)
		if err != nil {
			return err
		}
		// Other sessions end: a password change is often a reaction to a leak.
		if _, err := q.ExecContext(ctx, `UPDATE tokens SET revoked_at = $3 WHERE user_id = $1 AND id::text <> $2 AND revoked_at IS NULL`,
			u.ID, p.TokenID, s.now()); err != nil {
			return dbError(err)
		}
		_, err = q.ExecContext(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, u.ID, h, s.now())
		if err != nil {
			return dbError(err)
		}
		return Audit(ctx, q, p.AccountID, AuditEvent{Kind: "user.password_changed", TargetKind: "User", TargetID: u.ID})
	})
}
