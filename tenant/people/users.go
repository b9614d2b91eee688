package people

import (
	"context"
	"errors"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/purge"
)

// UserFilter narrows account.users.
type UserFilter struct {
	Search      string // in name or email
	Role        tenant.Role
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
func (s *Service) User(ctx context.Context, id string) (*tenant.User, error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil {
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	if p.IsStaff() {
		var u *tenant.User
		err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
			if !tenant.IsUUID(id) {
				return tenant.NotFound("user")
			}
			var x tenant.User
			if err := tx.GetContext(ctx, &x, `SELECT `+tenant.UserColumns+` FROM users WHERE id = $1`, id); err != nil {
				return tenant.NotFoundAs(tenant.DBError(err), "user")
			}
			u = &x
			return nil
		})
		return u, err
	}
	if !p.IsAdmin(p.AccountID) && p.ID != id {
		return nil, tenant.NotFound("user")
	}
	var u *tenant.User
	err := s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		u, err = tenant.GetUser(ctx, q, id, false)
		return err
	})
	if err == nil && u.Deleted() && !p.IsAdmin(p.AccountID) {
		return nil, tenant.NotFound("user")
	}
	return tenant.Result(u, err)
}

// UsersByID loads users of an account in one query, for dataloaders (a page
// of project folders' creators). Users the principal may not see (as User
// decides) are absent from the map.
func (s *Service) UsersByID(ctx context.Context, accountID string, ids []string) (map[string]*tenant.User, error) {
	p := tenant.PrincipalFrom(ctx)
	out := make(map[string]*tenant.User, len(ids))
	if !p.InAccount(accountID) && !p.IsStaff() {
		return out, nil
	}
	admin := p.IsStaff() || p.IsAdmin(accountID)
	err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var users []*tenant.User
		if err := q.SelectContext(ctx, &users, `SELECT `+tenant.UserColumns+` FROM users WHERE id = ANY($1::uuid[])`, tenant.UUIDArray(ids)); err != nil {
			return tenant.DBError(err)
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

// StaffUsersByID is UsersByID for support staff across accounts: the users
// with these IDs in any account, in one statement (a page of accounts'
// sessions' users). Anyone else gets none.
func (s *Service) StaffUsersByID(ctx context.Context, ids []string) (map[string]*tenant.User, error) {
	out := make(map[string]*tenant.User, len(ids))
	if !tenant.PrincipalFrom(ctx).IsStaff() || len(ids) == 0 {
		return out, nil
	}
	var users []*tenant.User
	err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &users, `SELECT `+tenant.UserColumns+` FROM users WHERE id = ANY($1::uuid[])`, tenant.UUIDArray(ids))
	})
	for _, u := range users {
		out[u.ID] = u
	}
	return out, tenant.DBError(err)
}

// userSorts are the orders of Users.
var userSorts = tenant.UserSorts("users")

// Users lists an account's users in order (by name by default). Admins and staff see everyone (deleted too,
// when asked); a plain user sees only themselves.
func (s *Service) Users(ctx context.Context, accountID string, f UserFilter, order tenant.Order, page tenant.Page) (*tenant.Connection[*tenant.User], error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil {
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	if !p.IsStaff() && !p.InAccount(accountID) {
		return nil, tenant.NotFound("account")
	}
	ks, err := userSorts.NewKeyset(order, page)
	if err != nil {
		return nil, err
	}
	where, args, err := userConditions(p, accountID, f)
	if err != nil {
		return nil, err
	}
	where = append(where, "account_id = $"+tenant.Itoa(len(args)+1))
	args = append(args, accountID)
	lq := tenant.ListQuery{Select: `SELECT ` + tenant.UserColumns, From: `FROM users WHERE ` + strings.Join(where, " AND "), Args: args}
	var conn *tenant.Connection[*tenant.User]
	run := func(q tenant.Queryer) (err error) {
		conn, err = tenant.ListPage(ctx, q, ks, lq)
		return err
	}
	if p.IsStaff() {
		err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return run(tx) })
	} else {
		err = s.InAccount(ctx, accountID, run)
	}
	return tenant.Result(conn, err)
}

// userConditions are filter f's conditions on table users as principal p
// sees accountID's users (a plain user sees only their own row), with their
// arguments ($1 on), but for the account's.
func userConditions(p *tenant.Principal, accountID string, f UserFilter) ([]string, []any, error) {
	if f.Role != "" && !f.Role.Valid() {
		return nil, nil, tenant.Invalid("role", "unknown role %q", f.Role)
	}
	var where []string
	args := []any{}
	arg := func(v any) string { args = append(args, v); return "$" + tenant.Itoa(len(args)) }
	switch f.Deleted {
	case "", LiveOnly:
		where = append(where, "deleted_at IS NULL")
	case DeletedOnly:
		where = append(where, "deleted_at IS NOT NULL")
	case AnyDeleted:
	default:
		return nil, nil, tenant.Invalid("deleted", "unknown deleted filter %q", f.Deleted)
	}
	if !p.IsStaff() && !p.IsAdmin(accountID) {
		where = append(where, "id = "+arg(p.ID))
	}
	if strings.TrimSpace(f.Search) != "" {
		pat := arg(tenant.LikePattern(f.Search))
		where = append(where, "(name ILIKE "+pat+" OR email ILIKE "+pat+")")
	}
	if f.Role != "" {
		where = append(where, "role = "+arg(string(f.Role)))
	}
	if f.SFTPEnabled != nil {
		where = append(where, "sftp_enabled = "+arg(*f.SFTPEnabled))
	}
	return where, args, nil
}

// UsersOf is Users for many accounts, each with the same filter, order and
// page, by account ID. For support staff (a page of accounts) it reads
// every account's page in one statement, each a keyset read of its own
// (tenant.ListPages), and counts them in one more when the page asks; for
// anyone else, who sees one account at most, it is Users for each. An
// account Users would refuse is refused (with Users' error).
func (s *Service) UsersOf(ctx context.Context, accountIDs []string, f UserFilter, order tenant.Order, page tenant.Page) (map[string]*tenant.Connection[*tenant.User], map[string]error, error) {
	out := make(map[string]*tenant.Connection[*tenant.User], len(accountIDs))
	refused := map[string]error{}
	p := tenant.PrincipalFrom(ctx)
	if !p.IsStaff() {
		for _, id := range accountIDs {
			if c, err := s.Users(ctx, id, f, order, page); err != nil {
				refused[id] = err
			} else {
				out[id] = c
			}
		}
		return out, refused, nil
	}
	ks, err := userSorts.NewKeyset(order, page)
	if err != nil {
		return nil, nil, err
	}
	where, args, err := userConditions(p, "", f)
	if err != nil {
		return nil, nil, err
	}
	var ids []string
	for _, id := range accountIDs {
		if tenant.IsUUID(id) {
			ids = append(ids, id)
		} else {
			refused[id] = tenant.NotFound("account")
		}
	}
	if len(ids) == 0 {
		return out, refused, nil
	}
	err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		// Each account's users are read from the users indexes that lead
		// with account_id, as one account's list is.
		out, err = tenant.ListPages(ctx, tx, ks, tenant.BatchQuery{
			ListQuery: tenant.ListQuery{
				Select: `SELECT *`,
				From:   `FROM users WHERE ` + strings.Join(append(where, "account_id = parent_id"), " AND "),
				Args:   args,
			},
			Outer: tenant.UserColumns,
		}, ids, func(u *tenant.User) (string, *tenant.User) { return u.AccountID, u })
		return err
	})
	if err != nil {
		return nil, nil, tenant.DBError(err)
	}
	return out, refused, nil
}

// CreateUserInput is what an admin gives to add a user.
type CreateUserInput struct {
	Email       string
	Name        string
	Role        tenant.Role // USER when empty
	Password    string      // optional initial password
	SFTPEnabled bool
	// CustomSFTPLogin, when set, needs SFTPEnabled and a dedicated IP; see SetCustomSFTPLogin.
	CustomSFTPLogin string
	// GroupID, when set, is the user's group from the start (the account's
	// default group otherwise): they are in it before any SFTP credential exists.
	GroupID string
}

// CreateUser adds a user to the principal's account. Owners and admins only;
// only owners can create other owners.
func (s *Service) CreateUser(ctx context.Context, in CreateUserInput) (*tenant.User, error) {
	p, err := tenant.RequireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.requireGroupManager(ctx, in.GroupID); err != nil {
		return nil, err
	}
	var u *tenant.User
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		u, err = s.CreateUserTx(ctx, q, p, in)
		return err
	})
	s.afterGroupSet(p.AccountID, in.GroupID, err)
	return tenant.Result(u, err)
}

// requireGroupManager checks, before a transaction opens, that the principal
// may put a user in a group, when the input names one.
func (s *Service) requireGroupManager(ctx context.Context, groupID string) error {
	if groupID == "" {
		return nil
	}
	_, err := s.Sharing.RequireGroupManager(ctx)
	return err
}

// afterGroupSet reloads the account's policy once a change that set a new
// user's group has committed. (A new user has no session to end.)
func (s *Service) afterGroupSet(accountID, groupID string, err error) {
	if groupID != "" {
		s.Sharing.AfterUserGroupChange(accountID, nil, false, err)
	}
}

// Validate checks every field of in that p may set, before any is refused,
// so that a form shows all its mistakes at once (errors joined with
// errors.Join), and returns them normalised.
func (in CreateUserInput) Validate(p *tenant.Principal) (email, name string, role tenant.Role, err error) {
	email, emailErr := tenant.NormEmail("email", in.Email)
	name, nameErr := tenant.NormName("name", in.Name, 200)
	role = in.Role
	if role == "" {
		role = tenant.RoleUser
	}
	var roleErr, passwordErr error
	if !role.Valid() {
		roleErr = tenant.Invalid("role", "unknown role %q", role)
	} else if role == tenant.RoleOwner && p.Role != tenant.RoleOwner {
		roleErr = tenant.Invalid("role", "only an owner can make another owner")
	}
	if in.Password != "" {
		passwordErr = tenant.ValidatePassword(in.Password)
	}
	return email, name, role, errors.Join(emailErr, nameErr, roleErr, passwordErr)
}

// CreateUserTx creates the user in the caller's transaction: their row, their
// group, the invitation, the custom login, then SFTP access, in that order,
// so that the credentials email sees the group and the custom login.
func (s *Service) CreateUserTx(ctx context.Context, q tenant.Queryer, p *tenant.Principal, in CreateUserInput) (*tenant.User, error) {
	email, name, role, err := in.Validate(p)
	if err != nil {
		return nil, err
	}
	var hash *string
	if in.Password != "" {
		h, err := tenant.HashPassword(ctx, in.Password)
		if err != nil {
			return nil, err
		}
		hash = &h
	}
	u := &tenant.User{}
	err = q.GetContext(ctx, u, `INSERT INTO users (account_id, email, name, role, password_hash, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING `+tenant.UserColumns,
		p.AccountID, email, name, role, hash, s.Time())
	if err != nil {
		if err = tenant.DBError(err); tenant.ErrorCode(err) == tenant.EConflict {
			return nil, errEmailInUse
		}
		return nil, err
	}
	if err := audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "user.created", TargetKind: "User", TargetID: u.ID, After: u.AuditState()}); err != nil {
		return nil, err
	}
	if in.Password == "" {
		// No password: the user sets their own through an emailed invitation.
		if err := s.sendInvitationTx(ctx, q, u); err != nil {
			return nil, err
		}
	}
	if in.GroupID != "" {
		// Before SFTP is turned on: a jailed user is jailed before any
		// credential of theirs exists, and their email says where they start.
		if _, err := s.Sharing.SetUserGroupTx(ctx, q, p, u, in.GroupID, "groupId"); err != nil {
			return nil, err
		}
	}
	if in.CustomSFTPLogin != "" {
		// Before SFTP is turned on, so that the credentials email names it.
		if err := s.SFTP.SetCustomLoginTx(ctx, q, u, in.CustomSFTPLogin, "customSftpLogin", in.SFTPEnabled); err != nil {
			return nil, err
		}
	}
	if in.SFTPEnabled {
		if err := s.SFTP.SetAccessTx(ctx, q, u, true); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// errEmailInUse: the email already names a principal that can log in (a live
// user of any account or a staff member; migration 00040 keeps one namespace).
// It does not say which, so it tells an attacker no more than that the email
// is taken.
var errEmailInUse = &tenant.Error{Code: tenant.EConflict, Field: "email", Message: "this email is already in use"}

// UpdateUserInput changes a user; nil fields stay as they are.
type UpdateUserInput struct {
	ID          string
	Email       *string
	Name        *string
	Role        *tenant.Role
	SFTPEnabled *bool
	// CustomSFTPLogin sets the user's custom SFTP login; "" removes it. See SetCustomSFTPLogin.
	CustomSFTPLogin *string
	// GroupID moves the user to this group (as SetUserGroup), before SFTP is
	// turned on in the same change.
	GroupID *string
	// CurrentPassword is needed to change one's own email.
	CurrentPassword string
}

// UpdateUser changes a user. Admins change anyone in their account except that
// only owners change an owner or make one; users change their own name and email.
// An account always keeps at least one owner.
//
// An email change needs the current password when it is the principal's own
// (a stolen token alone cannot move the account to another address); either
// way the old address is emailed what changed, when and by whom, the change
// is audited as user.email_changed, the user's API tokens end (all but
// the one making the change, when it is their own), and so do the one-time
// links already emailed (see emailChangedTx).
func (s *Service) UpdateUser(ctx context.Context, in UpdateUserInput) (*tenant.User, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	admin := p.IsAdmin(p.AccountID)
	if !admin && p.ID != in.ID {
		return nil, tenant.NotFound("user")
	}
	if !admin && in.GroupID != nil {
		return nil, tenant.Errorf(tenant.EForbidden, "only account owners and administrators can change groups")
	}
	if in.GroupID != nil {
		if err := s.requireGroupManager(ctx, *in.GroupID); err != nil {
			return nil, err
		}
	}
	passed := func() {}
	if in.ID == p.ID && in.Email != nil && in.CurrentPassword != "" {
		// An email change of one's own is a check of the password.
		if passed, err = s.countPasswordCheck(ctx, p, "currentPassword"); err != nil {
			return nil, err
		}
	}
	var (
		u           *tenant.User
		jailChanged bool
		// passwordChecked: the password was verified, so its count may be
		// reset. A password sent with an email that does not change is
		// counted and not checked: it must not reset the count either, or
		// a stolen token could wipe it between guesses elsewhere.
		passwordChecked bool
	)
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		if u, err = tenant.GetUser(ctx, q, in.ID, true); err != nil {
			return err
		}
		if u.Deleted() {
			return tenant.Errorf(tenant.EConflict, "this user is deleted; restore them first")
		}
		before := u.AuditState()
		if !admin && (in.Role != nil || in.SFTPEnabled != nil || in.CustomSFTPLogin != nil) {
			return tenant.Errorf(tenant.EForbidden, "only account owners and administrators can change roles and SFTP access")
		}
		if !p.MayChange(u) {
			return tenant.ErrOwnersOnly
		}
		oldEmail := u.Email
		var emailErr, nameErr error
		if in.Email != nil {
			u.Email, emailErr = tenant.NormEmail("email", *in.Email)
		}
		if in.Name != nil {
			u.Name, nameErr = tenant.NormName("name", *in.Name, 200)
		}
		if err := errors.Join(emailErr, nameErr); err != nil {
			return err // both fields' mistakes at once
		}
		emailChanged := u.Email != oldEmail
		if emailChanged && u.ID == p.ID {
			if err := checkCurrentPassword(ctx, u, in.CurrentPassword, "your current password is needed to change your email"); err != nil {
				return err
			}
			passwordChecked = true
		}
		if in.Role != nil && *in.Role != u.Role {
			if !in.Role.Valid() {
				return tenant.Invalid("role", "unknown role %q", *in.Role)
			}
			if *in.Role == tenant.RoleOwner && p.Role != tenant.RoleOwner {
				return tenant.Invalid("role", "only an owner can make another owner")
			}
			if u.Role == tenant.RoleOwner {
				if err := tenant.RequireAnotherOwner(ctx, q, u.ID); err != nil {
					return err
				}
			}
			u.Role = *in.Role
		}
		err = q.GetContext(ctx, u, `UPDATE users SET email = $2, name = $3, role = $4, updated_at = $5
			WHERE id = $1 RETURNING `+tenant.UserColumns, u.ID, u.Email, u.Name, u.Role, s.Time())
		if err != nil {
			if err = tenant.DBError(err); tenant.ErrorCode(err) == tenant.EConflict {
				return errEmailInUse
			}
			return err
		}
		if emailChanged {
			if err := s.emailChangedTx(ctx, q, p, u, oldEmail); err != nil {
				return err
			}
		}
		if in.GroupID != nil {
			// Before SFTP is turned on, as in CreateUserTx.
			if jailChanged, err = s.Sharing.SetUserGroupTx(ctx, q, p, u, *in.GroupID, "groupId"); err != nil {
				return err
			}
		}
		if in.CustomSFTPLogin != nil {
			// Before SFTP is turned on, so that the credentials email names it.
			sftpAfter := u.SFTPEnabled
			if in.SFTPEnabled != nil {
				sftpAfter = *in.SFTPEnabled
			}
			if err := s.SFTP.SetCustomLoginTx(ctx, q, u, *in.CustomSFTPLogin, "customSftpLogin", sftpAfter); err != nil {
				return err
			}
		}
		if in.SFTPEnabled != nil && *in.SFTPEnabled != u.SFTPEnabled {
			if err := s.SFTP.SetAccessTx(ctx, q, u, *in.SFTPEnabled); err != nil {
				return err
			}
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "user.updated", TargetKind: "User", TargetID: u.ID, Before: before, After: u.AuditState()})
	})
	if in.GroupID != nil {
		s.Sharing.AfterUserGroupChange(p.AccountID, u, jailChanged, err)
	}
	if err == nil && in.SFTPEnabled != nil && !*in.SFTPEnabled {
		s.EndSessions(u.AccountID, u.ID)
	}
	if err == nil && passwordChecked {
		passed()
	}
	return tenant.Result(u, err)
}

// DeleteUser soft-deletes a user: they can no longer log in (web or SFTP),
// their tokens and their outstanding invitation and password-reset links are
// revoked, their SFTP licence is freed and their live SFTP sessions end.
// Nothing they own is removed, so RestoreUser brings it all back (but the
// links: a restored user who was still invited is sent a new invitation).
//
// With deleteFiles, their home (My Files) is also scheduled to be deleted for
// good once the grace period (Files.Grace) has passed; until then RestoreUser
// still brings everything back and cancels the purge.
func (s *Service) DeleteUser(ctx context.Context, id string, deleteFiles bool) (*tenant.User, error) {
	u, err := s.ChangeUser(ctx, id, func(p *tenant.Principal, q tenant.Queryer, u *tenant.User) error {
		if u.Deleted() {
			return tenant.Errorf(tenant.EConflict, "this user is already deleted")
		}
		if u.ID == p.ID {
			return tenant.Invalid("id", "you cannot delete yourself")
		}
		if u.Role == tenant.RoleOwner {
			if err := tenant.RequireAnotherOwner(ctx, q, u.ID); err != nil {
				return err
			}
		}
		before := u.AuditState()
		if err := q.GetContext(ctx, u, `UPDATE users SET deleted_at = $2, updated_at = $2 WHERE id = $1 RETURNING `+tenant.UserColumns, u.ID, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		if _, err := q.ExecContext(ctx, `UPDATE tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, u.ID, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		// And the invitation and reset links already emailed, which
		// RestoreUser would otherwise bring back while unexpired.
		if err := s.revokeLinksTx(ctx, q, u); err != nil {
			return err
		}
		after := u.AuditState()
		if deleteFiles {
			at, err := s.Files.ScheduleTx(ctx, q, p.AccountID, purge.UserHome, u.ID)
			if err != nil {
				return err
			}
			after["filesPurgeAfter"] = at
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "user.deleted", TargetKind: "User", TargetID: u.ID, Before: before, After: after})
	})
	if err == nil {
		s.EndSessions(u.AccountID, u.ID)
	}
	return u, err
}

// RestoreUser brings back a deleted user with their keys and SFTP credentials.
// If they had SFTP access, restoring takes a licence again, and fails with a
// user error when none is available. A purge of their files still in its
// grace period is cancelled, so their home comes back as it was; once purged,
// it comes back empty. DeleteUser spent the links emailed to them, so a user
// who had not set a password yet is sent a new invitation.
func (s *Service) RestoreUser(ctx context.Context, id string) (*tenant.User, error) {
	return s.ChangeUser(ctx, id, func(p *tenant.Principal, q tenant.Queryer, u *tenant.User) error {
		if !u.Deleted() {
			return tenant.Errorf(tenant.EConflict, "this user is not deleted")
		}
		before := u.AuditState()
		if err := s.SFTP.RestoreAccessTx(ctx, q, u); err != nil {
			return err
		}
		err := q.GetContext(ctx, u, `UPDATE users SET deleted_at = NULL, updated_at = $2 WHERE id = $1 RETURNING `+tenant.UserColumns, u.ID, s.Time())
		if err != nil {
			if err = tenant.DBError(err); tenant.ErrorCode(err) == tenant.EConflict {
				return &tenant.Error{Code: tenant.EConflict, Field: "id", Message: "another user now has this user's email; change theirs first"}
			}
			return err
		}
		cancelled, err := s.Files.CancelTx(ctx, q, purge.UserHome, u.ID)
		if err != nil {
			return err
		}
		after := u.AuditState()
		if cancelled {
			after["filesPurgeCancelled"] = true
		}
		if u.PasswordHash == nil {
			if err := s.sendInvitationTx(ctx, q, u); err != nil {
				return err
			}
			after["invitedAgain"] = true
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "user.restored", TargetKind: "User", TargetID: u.ID, Before: before, After: after})
	})
}

// ChangePassword changes the principal's own password after checking the
// current one. The user's other API tokens and password-reset links are
// revoked and the SFTP sessions that logged in with the password end (on
// this node at once, on others at their gate's next check, about a second);
// key sessions go on.
func (s *Service) ChangePassword(ctx context.Context, current, next string) error {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return err
	}
	var nextErr error
	if err := tenant.ValidatePassword(next); err != nil {
		nextErr = tenant.Invalid("newPassword", "%s", tenant.ErrorMessage(err))
	}
	passed := func() {}
	if current != "" {
		if passed, err = s.countPasswordCheck(ctx, p, "currentPassword"); err != nil {
			return err
		}
	}
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		u, err := tenant.GetUser(ctx, q, p.ID, true)
		if err != nil {
			return err
		}
		// Both fields at once: a form shows a wrong current password and a
		// weak new one together.
		if err := errors.Join(checkCurrentPassword(ctx, u, current, "the current password is not correct"), nextErr); err != nil {
			return err
		}
		h, err := tenant.HashPassword(ctx, next)
		if err != nil {
			return err
		}
		// Other sessions end: a password change is often a reaction to a leak.
		if _, err := q.ExecContext(ctx, `UPDATE tokens SET revoked_at = $3 WHERE user_id = $1 AND id::text <> $2 AND revoked_at IS NULL`,
			u.ID, p.TokenID, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		// So do the reset links already sent: whoever got hold of one must
		// not undo the new password with it.
		if err := s.revokeLinksTx(ctx, q, u); err != nil {
			return err
		}
		_, err = q.ExecContext(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, u.ID, h, s.Time())
		if err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "user.password_changed", TargetKind: "User", TargetID: u.ID})
	})
	if err != nil {
		return err
	}
	passed()
	// Password SFTP sessions end too; key sessions go on.
	s.EndCredentialSessions(p.AccountID, p.ID, "")
	return nil
}

// checkCurrentPassword is a user error on currentPassword unless password is
// u's; empty says missing, wrong says wrong.
func checkCurrentPassword(ctx context.Context, u *tenant.User, password, missing string) error {
	if password == "" {
		return tenant.Invalid("currentPassword", "%s", missing)
	}
	hash := ""
	if u.PasswordHash != nil {
		hash = *u.PasswordHash
	}
	ok, err := tenant.VerifyPassword(ctx, hash, password)
	if err != nil {
		return err
	}
	if !ok {
		return tenant.Invalid("currentPassword", "the current password is not correct")
	}
	return nil
}

// emailChangedTx tells u's old address of the change, audits it and ends u's
// API tokens but the one p is using, in the caller's transaction. The
// password-reset and invitation links already emailed to the old address
// stop working: whoever reads that mailbox (a mistyped address, a former
// employer's) must not set the password of the user now known by the new
// one. A user still invited gets a new invitation at the new address.
func (s *Service) emailChangedTx(ctx context.Context, q tenant.Queryer, p *tenant.Principal, u *tenant.User, oldEmail string) error {
	keep := ""
	if p.ID == u.ID {
		keep = p.TokenID
	}
	if _, err := q.ExecContext(ctx, `UPDATE tokens SET revoked_at = $3 WHERE user_id = $1 AND id::text <> $2 AND revoked_at IS NULL`,
		u.ID, keep, s.Time()); err != nil {
		return tenant.DBError(err)
	}
	if err := s.revokeLinksTx(ctx, q, u); err != nil {
		return err
	}
	if u.InvitationPending() {
		if err := s.sendInvitationTx(ctx, q, u); err != nil {
			return err
		}
	}
	var accountName string
	if err := q.GetContext(ctx, &accountName, `SELECT name FROM accounts WHERE id = $1`, u.AccountID); err != nil {
		return tenant.DBError(err)
	}
	if err := outbox.Enqueue(ctx, q, u.AccountID, outbox.Email{To: oldEmail, Data: outbox.EmailChangedData{
		UserName: u.Name, AccountName: accountName, OldEmail: oldEmail, NewEmail: u.Email,
		ChangedAt: s.Time(), ChangedBy: tenant.ActorOf(ctx).Name,
	}}); err != nil {
		return err
	}
	return audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "user.email_changed", TargetKind: "User", TargetID: u.ID,
		Before: map[string]any{"email": oldEmail}, After: map[string]any{"email": u.Email}})
}
