package tenant

import (
	"context"
	"strings"
	"time"
)

// Account is a customer (a tenant).
type Account struct {
	ID                 string     `db:"id"`
	Name               string     `db:"name"`
	CreatedAt          time.Time  `db:"created_at"`
	UpdatedAt          time.Time  `db:"updated_at"`
	SFTPStatus         string     `db:"sftp_status"`
	SFTPTrialStartedAt *time.Time `db:"sftp_trial_started_at"`
	SFTPTrialEndsAt    *time.Time `db:"sftp_trial_ends_at"`
	SFTPActivatedAt    *time.Time `db:"sftp_activated_at"`
	SFTPRequestedAt    *time.Time `db:"sftp_requested_at"`
	SFTPSuspendedAt    *time.Time `db:"sftp_suspended_at"`
	SFTPLicences       int        `db:"sftp_licences"`
}

const accountColumns = `id, name, created_at, updated_at, sftp_status, sftp_trial_started_at, sftp_trial_ends_at,
	sftp_activated_at, sftp_requested_at, sftp_suspended_at, sftp_licences`

// Account returns an account its users or staff may see; to anyone else it
// does not exist.
func (s *Service) Account(ctx context.Context, id string) (*Account, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, Errorf(EUnauthenticated, "log in first")
	}
	if !isUUID(id) || (!p.IsStaff() && !p.InAccount(id)) {
		return nil, NotFound("account")
	}
	var a Account
	get := func(q Queryer) error {
		return notFoundAs(dbError(q.GetContext(ctx, &a, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id)), "account")
	}
	var err error
	if p.IsStaff() {
		err = s.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error { return get(tx) })
	} else {
		err = s.inAccount(ctx, id, get)
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Accounts lists all accounts, for support staff only.
func (s *Service) Accounts(ctx context.Context, search string, page Page) (*Connection[*Account], error) {
	if _, err := RequireStaff(ctx); err != nil {
		return nil, err
	}
	limit, afterKey, afterID, err := keyKeyset(page)
	if err != nil {
		return nil, err
	}
	var conn *Connection[*Account]
	err = s.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error {
		var accounts []*Account
		err := tx.SelectContext(ctx, &accounts, `SELECT `+accountColumns+` FROM accounts
			WHERE ($1 = '' OR name ILIKE $2 OR EXISTS (SELECT 1 FROM users u WHERE u.account_id = accounts.id AND u.email ILIKE $2))
			  AND ($3 = '' OR (lower(name), id) > ($4, $3::uuid))
			ORDER BY lower(name), id LIMIT $5`,
			strings.TrimSpace(search), likePattern(search), afterID, afterKey, limit+1)
		if err != nil {
			return dbError(err)
		}
		conn = keyPage(accounts, limit, afterID != "", func(a *Account) (string, string) { return strings.ToLower(a.Name), a.ID })
		return nil
	})
	return result(conn, err)
}

// CreateAccountInput makes an account with its first owner.
type CreateAccountInput struct {
	Name          string
	OwnerEmail    string
	OwnerName     string
	OwnerPassword string // optional: without it the owner must be invited
}

// CreateAccount makes an account and its owner. Staff only (and the admin CLI,
// which acts as the system).
func (s *Service) CreateAccount(ctx context.Context, in CreateAccountInput) (*Account, *User, error) {
	p := PrincipalFrom(ctx)
	if !p.IsStaff() && !isSystem(p) {
		if _, err := RequireStaff(ctx); err != nil {
			return nil, nil, err
		}
	}
	name, err := normName("name", in.Name, 200)
	if err != nil {
		return nil, nil, err
	}
	var a Account
	err = s.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error {
		return dbError(tx.GetContext(ctx, &a, `INSERT INTO accounts (name, created_at, updated_at) VALUES ($1, $2, $2) RETURNING `+accountColumns, name, s.now()))
	})
	if err != nil {
		return nil, nil, err
	}
	var u *User
	err = s.inAccount(ctx, a.ID, func(q Queryer) error {
		var err error
		owner := &Principal{Kind: KindUser, AccountID: a.ID, Role: RoleOwner}
		u, err = s.createUserTx(ctx, q, owner, CreateUserInput{
			Email: in.OwnerEmail, Name: in.OwnerName, Role: RoleOwner, Password: in.OwnerPassword,
		})
		if err != nil {
			return fieldPrefix(err, "owner")
		}
		return Audit(ctx, q, a.ID, AuditEvent{Kind: "account.created", TargetKind: "Account", TargetID: a.ID, After: map[string]any{"name": a.Name}})
	})
	if err != nil {
		// The owner could not be made: remove the empty account again.
		_ = s.DB.CrossTenant(context.WithoutCancel(ctx), ScopeStaff, func(tx *sqlxTx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE id = $1`, a.ID)
			return err
		})
		return nil, nil, err
	}
	return &a, u, nil
}

// fieldPrefix makes an error about input field "email" into "owner.email"-style
// ("ownerEmail"), so a nested input's user error names the right field.
func fieldPrefix(err error, prefix string) error {
	if e, ok := err.(*Error); ok && e.Field != "" {
		c := *e
		c.Field = prefix + strings.ToUpper(e.Field[:1]) + e.Field[1:]
		return &c
	}
	return err
}

// SystemContext marks ctx as the system acting (the admin CLI, start-up
// bootstrapping); only a few operations accept it.
func SystemContext(ctx context.Context) context.Context {
	return WithPrincipal(ctx, &Principal{Kind: kindSystem, Name: "system"})
}

const kindSystem PrincipalKind = "SYSTEM"

func isSystem(p *Principal) bool { return p != nil && p.Kind == kindSystem }
