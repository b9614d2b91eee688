package account

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/people"
)

// Account returns an account its users or staff may see; to anyone else it
// does not exist.
func (s *Service) Account(ctx context.Context, id string) (*tenant.Account, error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil {
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	if !tenant.IsUUID(id) || (!p.IsStaff() && !p.InAccount(id)) {
		return nil, tenant.NotFound("account")
	}
	var a tenant.Account
	get := func(q tenant.Queryer) error {
		return tenant.NotFoundAs(tenant.DBError(q.GetContext(ctx, &a, `SELECT `+tenant.AccountColumns+` FROM accounts WHERE id = $1`, id)), "account")
	}
	var err error
	if p.IsStaff() {
		err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return get(tx) })
	} else {
		err = s.InAccount(ctx, id, get)
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// AccountsByID is Account for many accounts in one statement, for loaders
// (staff lists whose rows name an account). Accounts the principal may not
// see, and missing ones, are absent.
func (s *Service) AccountsByID(ctx context.Context, ids []string) (map[string]*tenant.Account, error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil {
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !tenant.IsUUID(id) || (!p.IsStaff() && !p.InAccount(id)) })
	out := make(map[string]*tenant.Account, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	get := func(q tenant.Queryer) error {
		var accounts []*tenant.Account
		if err := q.SelectContext(ctx, &accounts, `SELECT `+tenant.AccountColumns+` FROM accounts WHERE id = ANY($1::uuid[])`, tenant.UUIDArray(ids)); err != nil {
			return tenant.DBError(err)
		}
		for _, a := range accounts {
			out[a.ID] = a
		}
		return nil
	}
	var err error
	if p.IsStaff() {
		err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return get(tx) })
	} else {
		err = s.InAccount(ctx, p.AccountID, get)
	}
	return out, err
}

// Accounts lists all accounts in order (by name by default), for support
// staff only.
func (s *Service) Accounts(ctx context.Context, search string, order tenant.Order, page tenant.Page) (*tenant.Connection[*tenant.Account], error) {
	if _, err := tenant.RequireStaff(ctx); err != nil {
		return nil, err
	}
	ks, err := accountSorts.NewKeyset(order, page)
	if err != nil {
		return nil, err
	}
	var conn *tenant.Connection[*tenant.Account]
	err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) (err error) {
		conn, err = tenant.ListPage(ctx, tx, ks, tenant.ListQuery{
			Select: `SELECT ` + tenant.AccountColumns + `, act.last_activity_at`,
			From: `FROM accounts JOIN account_activity act ON act.account_id = accounts.id
			WHERE ($1 = '' OR name ILIKE $2 OR EXISTS (SELECT 1 FROM users u WHERE u.account_id = accounts.id AND u.email ILIKE $2))`,
			Args:        []any{strings.TrimSpace(search), tenant.LikePattern(search)},
			CrossTenant: true,
		})
		return err
	})
	return tenant.Result(conn, err)
}

// accountSorts are the orders of Accounts: NAME (the default,
// case-insensitively), CREATED_AT and LAST_ACTIVITY (the account's latest
// audited change, table account_activity), ties by ID.
var accountSorts = &tenant.Sorts[*tenant.Account]{
	List: "accounts",
	Keys: []tenant.SortKey[*tenant.Account]{
		{Field: "NAME", Expr: "lower(accounts.name)", Type: "text", Of: func(a *tenant.Account) string { return strings.ToLower(a.Name) }},
		{Field: "CREATED_AT", Expr: "accounts.created_at", Type: "timestamptz", Of: func(a *tenant.Account) string { return tenant.TimeKey(a.CreatedAt) }},
		{Field: "LAST_ACTIVITY", Expr: "act.last_activity_at", Type: "timestamptz", Of: func(a *tenant.Account) string { return tenant.TimeKey(*a.LastActivityAt) }},
	},
	Default: tenant.Order{Field: "NAME"},
	ID:      "accounts.id",
	IDOf:    func(a *tenant.Account) string { return a.ID },
}

// LastActivity is the time of an account's latest audited change, or of its
// creation. Support staff, and the account's owners and administrators.
func (s *Service) LastActivity(ctx context.Context, accountID string) (time.Time, error) {
	var at time.Time
	read := func(q tenant.Queryer) error {
		return tenant.NotFoundAs(tenant.DBError(q.GetContext(ctx, &at,
			`SELECT last_activity_at FROM account_activity WHERE account_id = $1`, accountID)), "account")
	}
	if err := tenant.RequireAccountAdmin(ctx, accountID, "the account's activity"); err != nil {
		return time.Time{}, err
	}
	var err error
	if tenant.PrincipalFrom(ctx).IsStaff() {
		err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return read(tx) })
	} else {
		err = s.DB.InAccount(ctx, accountID, func(tx *sqlx.Tx) error { return read(tx) })
	}
	return at, err
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
func (s *Service) CreateAccount(ctx context.Context, in CreateAccountInput) (*tenant.Account, *tenant.User, error) {
	p := tenant.PrincipalFrom(ctx)
	if !p.IsStaff() && !tenant.IsSystem(p) {
		if _, err := tenant.RequireStaff(ctx); err != nil {
			return nil, nil, err
		}
	}
	// The account's name and its owner's fields are all checked before any
	// is refused (all user errors at once).
	name, nameErr := tenant.NormName("name", in.Name, 200)
	ownerIn := people.CreateUserInput{Email: in.OwnerEmail, Name: in.OwnerName, Role: tenant.RoleOwner, Password: in.OwnerPassword}
	_, _, _, ownerErr := ownerIn.Validate(&tenant.Principal{Kind: tenant.KindUser, Role: tenant.RoleOwner})
	if err := errors.Join(nameErr, fieldPrefix(ownerErr, "owner")); err != nil {
		return nil, nil, err
	}
	var a tenant.Account
	err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tenant.DBError(tx.GetContext(ctx, &a, `INSERT INTO accounts (name, created_at, updated_at) VALUES ($1, $2, $2) RETURNING `+tenant.AccountColumns, name, s.Time()))
	})
	if err != nil {
		return nil, nil, err
	}
	var u *tenant.User
	err = s.InAccount(ctx, a.ID, func(q tenant.Queryer) error {
		var err error
		owner := &tenant.Principal{Kind: tenant.KindUser, AccountID: a.ID, Role: tenant.RoleOwner}
		u, err = s.People.CreateUserTx(ctx, q, owner, ownerIn)
		if err != nil {
			return fieldPrefix(err, "owner")
		}
		return audit.Record(ctx, q, a.ID, audit.Event{Kind: "account.created", TargetKind: "Account", TargetID: a.ID, After: map[string]any{"name": a.Name}})
	})
	if err != nil {
		// The owner could not be made: remove the empty account again.
		_ = s.DB.CrossTenant(context.WithoutCancel(ctx), tenant.ScopeStaff, func(tx *sqlx.Tx) error {
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
	if joined, ok := err.(interface{ Unwrap() []error }); ok { // several fields' mistakes at once
		errs := joined.Unwrap()
		renamed := make([]error, len(errs))
		for i, e := range errs {
			renamed[i] = fieldPrefix(e, prefix)
		}
		return errors.Join(renamed...)
	}
	if e, ok := err.(*tenant.Error); ok && e.Field != "" {
		c := *e
		c.Field = prefix + strings.ToUpper(e.Field[:1]) + e.Field[1:]
		return &c
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok { // several fields at once
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, fieldPrefix(e, prefix))
		}
		return errors.Join(out...)
	}
	return err
}
