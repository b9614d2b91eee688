package tenant

import (
	"context"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Account is a customer (a tenant).
type Account struct {
	ID        string    `db:"id"`
	Name      string    `db:"name"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
	// LastActivityAt is the time of the account's latest audited change, or
	// of its creation (table account_activity). Only lists of accounts read
	// it; elsewhere it is nil (ask LastActivity).
	LastActivityAt     *time.Time `db:"last_activity_at"`
	SFTPStatus         string     `db:"sftp_status"`
	SFTPTrialStartedAt *time.Time `db:"sftp_trial_started_at"`
	SFTPTrialEndsAt    *time.Time `db:"sftp_trial_ends_at"`
	SFTPActivatedAt    *time.Time `db:"sftp_activated_at"`
	SFTPRequestedAt    *time.Time `db:"sftp_requested_at"`
	SFTPSuspendedAt    *time.Time `db:"sftp_suspended_at"`
	SFTPLicences       int        `db:"sftp_licences"`
	// RequireTotpForAdmins requires two-factor of owners and administrators
	// at GraphQL login (people.Service.SetRequireTotpForAdmins).
	RequireTotpForAdmins bool `db:"require_totp_for_admins"`
	// IPAllowlist is the account's IP allowlist (see ParseIPAllowlist);
	// empty restricts nothing.
	IPAllowlist pq.StringArray `db:"ip_allowlist"`
}

const AccountColumns = `id, name, created_at, updated_at, sftp_status, sftp_trial_started_at, sftp_trial_ends_at,
	sftp_activated_at, sftp_requested_at, sftp_suspended_at, sftp_licences, require_totp_for_admins, ip_allowlist`

// SystemContext marks ctx as the system acting (the admin CLI, start-up
// bootstrapping); only a few operations accept it.
func SystemContext(ctx context.Context) context.Context {
	return WithPrincipal(ctx, &Principal{Kind: KindSystem, Name: "system"})
}

const KindSystem PrincipalKind = "SYSTEM"

func IsSystem(p *Principal) bool { return p != nil && p.Kind == KindSystem }

// LockAccount loads the account row and locks it until the transaction ends.
// Every change to the module and every enabling of SFTP takes this lock.
func LockAccount(ctx context.Context, q Queryer, accountID string) (*Account, error) {
	if !IsUUID(accountID) {
		return nil, NotFound("account")
	}
	var a Account
	if err := q.GetContext(ctx, &a, `SELECT `+AccountColumns+` FROM accounts WHERE id = $1 FOR UPDATE`, accountID); err != nil {
		return nil, NotFoundAs(DBError(err), "account")
	}
	return &a, nil
}

// RequireAccountAdmin lets through support staff and the account's owners and
// administrators; what names what the account's other users may not see.
// Staff still need the account to exist; the caller's query decides that.
func RequireAccountAdmin(ctx context.Context, accountID, what string) error {
	p := PrincipalFrom(ctx)
	switch {
	case p == nil:
		return Errorf(EUnauthenticated, "log in first")
	case !IsUUID(accountID):
		return NotFound("account")
	case p.IsStaff(), p.IsAdmin(accountID):
		return nil
	case p.InAccount(accountID):
		return Errorf(EForbidden, "only owners and administrators can see %s", what)
	default:
		return NotFound("account")
	}
}

// ReadAdminAccounts is RequireAccountAdmin for many accounts at once, for
// the batches behind a page of accounts (support staff's `accounts`): read
// runs once, with the accounts among ids the principal may see what names —
// for support staff any of them, in one cross-tenant transaction in the
// staff scope; for an owner or administrator their own, in its transaction —
// and is not run when there are none. The other accounts are in refused,
// with the error RequireAccountAdmin gives each.
func (b *Base) ReadAdminAccounts(ctx context.Context, ids []string, what string, read func(q Queryer, ids []string) error) (refused map[string]error, err error) {
	refused = map[string]error{}
	var ok []string
	for _, id := range ids {
		if err := RequireAccountAdmin(ctx, id, what); err != nil {
			refused[id] = err
		} else if !slices.Contains(ok, id) {
			ok = append(ok, id)
		}
	}
	switch {
	case len(ok) == 0:
		return refused, nil
	case PrincipalFrom(ctx).IsStaff():
		return refused, b.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlx.Tx) error { return read(tx, ok) })
	default: // an owner or administrator passes for their own account only
		return refused, b.InAccount(ctx, ok[0], func(q Queryer) error { return read(q, ok) })
	}
}

// OneOf is the answer a batch of ReadAdminAccounts (or any batch with
// refusals) gave for one of its keys: the batch's error, the key's refusal,
// its value, or when it has none NotFound(what) — or the zero value when
// what is empty (a key without a value is an answer: "none").
func OneOf[V any](id string, m map[string]V, refused map[string]error, err error, what string) (V, error) {
	var zero V
	if err != nil {
		return zero, err
	}
	if err := refused[id]; err != nil {
		return zero, err
	}
	v, ok := m[id]
	if !ok && what != "" {
		return zero, NotFound(what)
	}
	return v, nil
}

// ModuleStatus is the state of an account's SFTP module as users see it.
type ModuleStatus string

const (
	ModuleNone      ModuleStatus = "NONE"
	ModuleTrial     ModuleStatus = "TRIAL"
	ModuleActive    ModuleStatus = "ACTIVE"
	ModuleExpired   ModuleStatus = "EXPIRED"
	ModuleSuspended ModuleStatus = "SUSPENDED"
)

// EffectiveModuleStatus derives the status from the stored one and the clock:
// a trial whose end has passed reads EXPIRED without any job having to run.
func EffectiveModuleStatus(stored string, trialEndsAt *time.Time, now time.Time) ModuleStatus {
	s := ModuleStatus(stored)
	if s == ModuleTrial && trialEndsAt != nil && !now.Before(*trialEndsAt) {
		return ModuleExpired
	}
	return s
}

// AllowsLogin reports whether SFTP logins work in this status.
func (s ModuleStatus) AllowsLogin() bool { return s == ModuleTrial || s == ModuleActive }

// ModuleStatus returns the account's SFTP module status at now.
func (a *Account) ModuleStatus(now time.Time) ModuleStatus {
	return EffectiveModuleStatus(a.SFTPStatus, a.SFTPTrialEndsAt, now)
}

// ReadAdminRecord runs read for one of the account-owned records only owners,
// administrators and support staff see (audit events, emails), looked up by
// ID alone: staff read across accounts, owners and administrators in their
// own account. Anyone else, like a missing ID, gets what's "not found".
func (b *Base) ReadAdminRecord(ctx context.Context, id, what string, read func(q Queryer) error) error {
	p := PrincipalFrom(ctx)
	switch {
	case p == nil:
		return Errorf(EUnauthenticated, "log in first")
	case !IsUUID(id):
		return NotFound(what)
	case p.IsStaff():
		return NotFoundAs(b.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlx.Tx) error { return read(tx) }), what)
	case p.IsAdmin(p.AccountID):
		return NotFoundAs(b.InAccount(ctx, p.AccountID, read), what)
	default:
		return NotFound(what)
	}
}
