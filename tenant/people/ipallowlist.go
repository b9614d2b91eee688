package people

import (
	"context"
	"slices"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
)

// errSelfLockout refuses a list that would lock out the person saving it.
func errSelfLockout(field string) error {
	return tenant.Invalid(field, "this list does not include your own address; saving it would lock you out (add your address, or ask support staff to clear the account's list later)")
}

// checkNotLockingOut refuses a non-empty list that does not include the
// address the request came from (p.Addr); with no known address, any
// non-empty list is refused, as it cannot be checked.
func checkNotLockingOut(p *tenant.Principal, field string, list []string) error {
	if len(list) > 0 && !tenant.IPAllowed(list, p.Addr) {
		return errSelfLockout(field)
	}
	return nil
}

// SetAccountIPAllowlist replaces the IP allowlist of the caller's account:
// every login and API request of its users, and every SFTP login to it,
// must then come from one of cidrs (an empty list restricts nothing).
// Owners only; a list that excludes the owner's own address is refused
// (INVALID on "cidrs"); more than tenant.MaxIPAllowlist entries is LIMIT.
// The change is audited.
func (s *Service) SetAccountIPAllowlist(ctx context.Context, cidrs []string) (*tenant.Account, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != tenant.RoleOwner {
		return nil, tenant.Errorf(tenant.EForbidden, "only account owners can change the account's IP allowlist")
	}
	list, err := tenant.ParseIPAllowlist("cidrs", cidrs)
	if err != nil {
		return nil, err
	}
	if err := checkNotLockingOut(p, "cidrs", list); err != nil {
		return nil, err
	}
	var a *tenant.Account
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		a, err = s.setAccountAllowlistTx(ctx, q, p.AccountID, list)
		return err
	})
	return tenant.Result(a, err)
}

// ClearAccountIPAllowlist empties an account's IP allowlist, for an owner
// who locked themselves out. Support staff only; audited.
func (s *Service) ClearAccountIPAllowlist(ctx context.Context, accountID string) (*tenant.Account, error) {
	if _, err := tenant.RequireStaff(ctx); err != nil {
		return nil, err
	}
	var a *tenant.Account
	err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		var err error
		a, err = s.setAccountAllowlistTx(ctx, tx, accountID, []string{})
		return err
	})
	return tenant.Result(a, err)
}

func (s *Service) setAccountAllowlistTx(ctx context.Context, q tenant.Queryer, accountID string, list []string) (*tenant.Account, error) {
	a, err := tenant.LockAccount(ctx, q, accountID)
	if err != nil {
		return nil, err
	}
	before := slices.Clone([]string(a.IPAllowlist))
	if err := q.GetContext(ctx, a, `UPDATE accounts SET ip_allowlist = $2, updated_at = $3 WHERE id = $1 RETURNING `+tenant.AccountColumns,
		accountID, pq.StringArray(list), s.Time()); err != nil {
		return nil, tenant.DBError(err)
	}
	return a, audit.Record(ctx, q, accountID, audit.Event{Kind: "account.ip_allowlist_changed", TargetKind: "Account", TargetID: accountID,
		Before: map[string]any{"ipAllowlist": before}, After: map[string]any{"ipAllowlist": list}})
}

// SetUserIPAllowlist replaces one user's own IP allowlist, which applies on
// top of the account's (an empty list restricts nothing). Owners and
// administrators; only an owner changes an owner's (tenant.ErrOwnersOnly).
// A list of one's own that excludes one's own address is refused. Audited.
func (s *Service) SetUserIPAllowlist(ctx context.Context, userID string, cidrs []string) (*tenant.User, error) {
	list, err := tenant.ParseIPAllowlist("cidrs", cidrs)
	if err != nil {
		return nil, err
	}
	return s.ChangeUser(ctx, userID, func(p *tenant.Principal, q tenant.Queryer, u *tenant.User) error {
		if u.ID == p.ID {
			if err := checkNotLockingOut(p, "cidrs", list); err != nil {
				return err
			}
		}
		before := slices.Clone([]string(u.IPAllowlist))
		if err := q.GetContext(ctx, u, `UPDATE users SET ip_allowlist = $2, updated_at = $3 WHERE id = $1 RETURNING `+tenant.UserColumns,
			u.ID, pq.StringArray(list), s.Time()); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "user.ip_allowlist_changed", TargetKind: "User", TargetID: u.ID,
			Before: map[string]any{"ipAllowlist": before}, After: map[string]any{"ipAllowlist": list}})
	})
}
