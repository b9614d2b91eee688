package sftpaccess

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
)

// Module defaults used when SFTPConfig leaves them zero.
const (
	defaultTrialDays     = 14
	defaultTrialLicences = 5
	// MaxLicences bounds what support may set: far above any real account, low
	// enough that a typo (an extra digit or two) is caught.
	MaxLicences = 100000
	// trialReminderLead is how long before the trial ends its owners are reminded.
	trialReminderLead = 3 * 24 * time.Hour
	// maxRequestMessage matches the column's check.
	maxRequestMessage = 2000
)

// Licences is an account's SFTP licence count.
type Licences struct {
	Purchased int // set by support (or the trial)
	Used      int // live users with SFTP access
	Available int // Purchased - Used, never negative
}

func newLicences(purchased, used int) Licences {
	return Licences{Purchased: purchased, Used: used, Available: max(0, purchased-used)}
}

// LicenceChange is the outcome of a staff change to an account's licences.
type LicenceChange struct {
	Account  *tenant.Account
	Licences Licences
	// Warning is set when more users have SFTP access than there are licences
	// now. They keep it, but no one else can be enabled until enough are
	// turned off. Empty otherwise.
	Warning string
}

// ModuleRequest is an owner's or administrator's request to buy the SFTP
// module (or more licences), queued for support.
type ModuleRequest struct {
	ID               string     `db:"id"`
	AccountID        string     `db:"account_id"`
	AccountName      string     `db:"account_name"`
	RequestedBy      string     `db:"requested_by"` // user ID
	RequestedByName  string     `db:"requested_by_name"`
	RequestedByEmail string     `db:"requested_by_email"`
	Message          string     `db:"message"`
	CreatedAt        time.Time  `db:"created_at"`
	HandledAt        *time.Time `db:"handled_at"` // set when support activated the module
}

// moduleAuditState is what the audit trail records of the module.
func moduleAuditState(a *tenant.Account) map[string]any {
	return map[string]any{"status": a.SFTPStatus, "licences": a.SFTPLicences, "trialEndsAt": a.SFTPTrialEndsAt}
}

// updateModule writes the module columns of a (locked) account and audits the
// change as kind, with the state before and after.
func (s *Service) updateModule(ctx context.Context, q tenant.Queryer, a *tenant.Account, kind, set string, args ...any) error {
	before := moduleAuditState(a)
	args = append([]any{a.ID, s.Time()}, args...)
	if err := q.GetContext(ctx, a, `UPDATE accounts SET `+set+`, updated_at = $2 WHERE id = $1 RETURNING `+tenant.AccountColumns, args...); err != nil {
		return tenant.DBError(err)
	}
	return audit.Record(ctx, q, a.ID, audit.Event{Kind: kind, TargetKind: "Account", TargetID: a.ID, Before: before, After: moduleAuditState(a)})
}

// owner is a live owner of an account, as module emails need them.
type owner struct {
	ID    string `db:"id"`
	Name  string `db:"name"`
	Email string `db:"email"`
}

// liveOwners lists the account's live owners, oldest first.
func liveOwners(ctx context.Context, q tenant.Queryer, accountID string) ([]owner, error) {
	var owners []owner
	err := q.SelectContext(ctx, &owners, `SELECT id, name, email FROM users
		WHERE account_id = $1 AND role = 'OWNER' AND deleted_at IS NULL ORDER BY created_at, id`, accountID)
	return owners, tenant.DBError(err)
}

// emailOwners enqueues one email to each live owner of the account, in the
// caller's transaction.
func emailOwners(ctx context.Context, q tenant.Queryer, accountID string, data func(o owner) outbox.EmailData) error {
	owners, err := liveOwners(ctx, q, accountID)
	if err != nil {
		return err
	}
	for _, o := range owners {
		if err := outbox.Enqueue(ctx, q, accountID, outbox.Email{To: o.Email, Data: data(o)}); err != nil {
			return err
		}
	}
	return nil
}

// firstStart reports whether the module has never started for the account
// (no trial, never activated): only then do owners get SFTP with it, so that
// a later activation (after a trial, a suspension or an expiry) neither
// re-issues nor resends anything. a is the account before the change.
func firstStart(a *tenant.Account) bool {
	return a.SFTPTrialStartedAt == nil && a.SFTPActivatedAt == nil
}

// ownersSFTPTx turns SFTP on, in the caller's transaction (which holds the
// account's lock and has just started the module), for each of the owners
// ownerIDs who is live and has no SFTP access yet, taking a licence each
// through reserveLicence, so never overselling. It returns, by owner ID, what
// their module email says of it: their credentials, or that no licence was free.
func (s *Service) ownersSFTPTx(ctx context.Context, q tenant.Queryer, ownerIDs []string) (map[string]outbox.OwnerSFTP, error) {
	out := map[string]outbox.OwnerSFTP{}
	for _, id := range ownerIDs {
		u, err := tenant.GetUser(ctx, q, id, true)
		if err != nil {
			return nil, err
		}
		if u.Deleted() || u.Role != tenant.RoleOwner || u.SFTPEnabled {
			continue
		}
		data, err := s.switchAccessTx(ctx, q, u, true)
		switch {
		case tenant.ErrorCode(err) == tenant.ELimit:
			// reserveLicence failed before writing anything: the module still starts.
			out[id] = outbox.OwnerSFTP{NoLicenceForOwner: true}
		case err != nil:
			return nil, err
		default:
			out[id] = outbox.OwnerSFTP{OwnSFTP: data}
		}
	}
	return out, nil
}

// lockUsers locks the rows of the users ids, in ID order so that two
// transactions locking some of the same users cannot deadlock.
func lockUsers(ctx context.Context, q tenant.Queryer, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	var got []string
	return tenant.DBError(q.SelectContext(ctx, &got, `SELECT id FROM users WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
		tenant.StringArray(ids)))
}

// subset reports whether every one of ids is in of.
func subset(ids, of []string) bool {
	in := map[string]bool{}
	for _, id := range of {
		in[id] = true
	}
	for _, id := range ids {
		if !in[id] {
			return false
		}
	}
	return true
}

// requestingOwners returns who gets SFTP when support activates the module
// for the first time: the live owners with an open module request, oldest
// request first; when no owner asked (an administrator did, or support acted
// unasked), the account's first owner, since the account's SFTP starts with them.
func requestingOwners(ctx context.Context, q tenant.Queryer, accountID string) ([]string, error) {
	var ids []string
	if err := q.SelectContext(ctx, &ids, `SELECT u.id FROM sftp_module_requests r
		JOIN users u ON u.account_id = r.account_id AND u.id = r.requested_by
		WHERE r.account_id = $1 AND r.handled_at IS NULL AND u.role = 'OWNER' AND u.deleted_at IS NULL
		GROUP BY u.id ORDER BY min(r.created_at), u.id`, accountID); err != nil {
		return nil, tenant.DBError(err)
	}
	if len(ids) > 0 {
		return ids, nil
	}
	owners, err := liveOwners(ctx, q, accountID)
	if err != nil || len(owners) == 0 {
		return nil, err
	}
	return []string{owners[0].ID}, nil
}

// StartSFTPTrial starts the account's free SFTP trial: TRIAL for
// SFTPConfig.TrialDays with SFTPConfig.TrialLicences licences, and an email to
// the owners. Only an owner may start it (FORBIDDEN otherwise), and only once
// per account ever: a second trial, or a trial once the module is set up, is
// an EConflict user error.
func (s *Service) StartSFTPTrial(ctx context.Context) (*tenant.Account, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != tenant.RoleOwner {
		return nil, tenant.Errorf(tenant.EForbidden, "only the account owner can start the SFTP trial")
	}
	days, licences := s.Config.TrialDays, s.Config.TrialLicences
	if days <= 0 {
		days = defaultTrialDays
	}
	if licences <= 0 {
		licences = defaultTrialLicences
	}
	var a *tenant.Account
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		// The owner's row lock before the account's, as in SetSFTPAccess:
		// turning their SFTP on below takes both, and the other order could
		// deadlock with a setSftpAccess on them.
		if err := lockUsers(ctx, q, []string{p.ID}); err != nil {
			return err
		}
		var err error
		if a, err = tenant.LockAccount(ctx, q, p.AccountID); err != nil {
			return err
		}
		switch {
		case a.SFTPTrialStartedAt != nil:
			return tenant.Errorf(tenant.EConflict, "this account has already had its free SFTP trial; request the SFTP module to keep using SFTP")
		case tenant.ModuleStatus(a.SFTPStatus) != tenant.ModuleNone:
			return tenant.Errorf(tenant.EConflict, "the SFTP module is already set up for this account")
		}
		now := s.Time()
		ends := now.Add(time.Duration(days) * 24 * time.Hour)
		first := firstStart(a)
		// GREATEST: support may already have granted more licences than a trial has.
		if err := s.updateModule(ctx, q, a, "sftp_module.trial_started",
			`sftp_status = 'TRIAL', sftp_trial_started_at = $2, sftp_trial_ends_at = $3, sftp_licences = greatest(sftp_licences, $4)`,
			ends, licences); err != nil {
			return err
		}
		var own map[string]outbox.OwnerSFTP
		if first {
			// The owner who starts the trial can connect at once.
			var err error
			if own, err = s.ownersSFTPTx(ctx, q, []string{p.ID}); err != nil {
				return err
			}
		}
		return emailOwners(ctx, q, a.ID, func(o owner) outbox.EmailData {
			return outbox.ModuleTrialStartedData{OwnerName: o.Name, AccountName: a.Name, StartedAt: now, EndsAt: ends, Licences: a.SFTPLicences,
				OwnerSFTP: own[o.ID]}
		})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// RequestSFTPModule asks support to activate the SFTP module (or to add
// licences) for the principal's account, with an optional message of up to
// 2000 characters. Owners and administrators only.
func (s *Service) RequestSFTPModule(ctx context.Context, message string) (*ModuleRequest, error) {
	p, err := tenant.RequireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	message = strings.TrimSpace(message)
	if !utf8.ValidString(message) {
		return nil, tenant.Invalid("message", "message is not valid text")
	}
	if utf8.RuneCountInString(message) > maxRequestMessage {
		return nil, tenant.Invalid("message", "message must be at most %d characters", maxRequestMessage)
	}
	var r ModuleRequest
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		a, err := tenant.LockAccount(ctx, q, p.AccountID)
		if err != nil {
			return err
		}
		now := s.Time()
		if err := q.GetContext(ctx, &r, `INSERT INTO sftp_module_requests (account_id, requested_by, message, created_at)
			VALUES ($1, $2, $3, $4) RETURNING id, account_id, requested_by, message, created_at, handled_at`,
			a.ID, p.ID, message, now); err != nil {
			return tenant.DBError(err)
		}
		r.AccountName, r.RequestedByName, r.RequestedByEmail = a.Name, p.Name, p.Email
		if _, err := q.ExecContext(ctx, `UPDATE accounts SET sftp_requested_at = $2 WHERE id = $1`, a.ID, now); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, a.ID, audit.Event{Kind: "sftp_module.requested", TargetKind: "Account", TargetID: a.ID,
			After: map[string]any{"message": message, "status": a.SFTPStatus}})
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// SFTPModuleRequests lists module requests across accounts, oldest first
// (a queue), only the unhandled ones when onlyOpen. Support staff only.
func (s *Service) SFTPModuleRequests(ctx context.Context, onlyOpen bool, page tenant.Page) (*tenant.Connection[*ModuleRequest], error) {
	return tenant.StaffQueue(ctx, s.DB, moduleRequestQueue, page, tenant.ListQuery{
		Select: moduleRequestColumns,
		From:   moduleRequestFrom + ` WHERE (NOT $1 OR r.handled_at IS NULL)`,
		Args:   []any{onlyOpen},
	})
}

var moduleRequestQueue = tenant.QueueSorts("sftpModuleRequests",
	func(r *ModuleRequest) (time.Time, string) { return r.CreatedAt, r.ID })

// moduleRequestSelect reads ModuleRequests.
const moduleRequestSelect = moduleRequestColumns + " " + moduleRequestFrom

const moduleRequestColumns = `SELECT r.id, r.account_id, a.name AS account_name, r.requested_by,
		u.name AS requested_by_name, u.email AS requested_by_email, r.message, r.created_at, r.handled_at`

const moduleRequestFrom = `FROM sftp_module_requests r
	JOIN accounts a ON a.id = r.account_id
	JOIN users u ON u.account_id = r.account_id AND u.id = r.requested_by`

// SFTPModuleRequest returns one request by ID, for support staff only; to
// anyone else it does not exist.
func (s *Service) SFTPModuleRequest(ctx context.Context, id string) (*ModuleRequest, error) {
	return tenant.StaffQueueItem[ModuleRequest](ctx, s.DB, moduleRequestSelect, id, "request")
}

// staffOnAccount runs fn for support staff in a transaction scoped to the one
// account they act on, with the account's row locked: the tenant scope (not
// the staff one) lets the change write the account's outbox, and is narrower.
// A malformed or unknown account ID is "account not found". before, if not
// nil, runs in the transaction before the account is locked: a change that
// locks users' rows takes them there, as every other path locks a user before
// their account.
func (s *Service) staffOnAccount(ctx context.Context, accountID string, before func(q tenant.Queryer) error,
	fn func(q tenant.Queryer, a *tenant.Account) error) error {
	if _, err := tenant.RequireStaff(ctx); err != nil {
		return err
	}
	if !tenant.IsUUID(accountID) {
		return tenant.NotFound("account")
	}
	return s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		if before != nil {
			if err := before(q); err != nil {
				return err
			}
		}
		a, err := tenant.LockAccount(ctx, q, accountID)
		if err != nil {
			return err
		}
		return fn(q, a)
	})
}

// licenceChange reports the account's licences after a change, with a warning
// when more users have SFTP access than there are licences.
func licenceChange(ctx context.Context, q tenant.Queryer, a *tenant.Account) (*LicenceChange, error) {
	used, err := UsedLicences(ctx, q, a.ID)
	if err != nil {
		return nil, err
	}
	c := &LicenceChange{Account: a, Licences: newLicences(a.SFTPLicences, used)}
	if used > a.SFTPLicences {
		over := used - a.SFTPLicences
		verb := "are"
		if over == 1 {
			verb = "is"
		}
		have := "have"
		if used == 1 {
			have = "has"
		}
		c.Warning = fmt.Sprintf("%s %s SFTP access but only %s: no one else can be enabled until %d %s turned off",
			tenant.Plural(used, "user", "users"), have, tenant.Plural(a.SFTPLicences, "licence", "licences"), over, verb)
	}
	return c, nil
}

// ActivateSFTPModule makes the account's module ACTIVE with the given number
// of licences (0 to MaxLicences), after a purchase. It works from any other
// status: an expired trial or a suspension ends, and users who had SFTP access
// get it back with the same credentials. Open module requests are marked
// handled and the owners are emailed. Support staff only; an unknown account
// is not found; an already active module is an EConflict user error.
//
// The first activation (no trial before) also turns SFTP on for the owners
// who asked for the module (requestingOwners), as StartSFTPTrial does for the
// owner who starts the trial, and their emails carry their credentials.
func (s *Service) ActivateSFTPModule(ctx context.Context, accountID string, licences int) (*LicenceChange, error) {
	for attempt := 1; ; attempt++ {
		c, err := s.activate(ctx, accountID, licences)
		// A module request came in between locking the owners and locking
		// the account: try again with the new requester locked too.
		if err == errOwnersChanged && attempt < 3 {
			continue
		}
		return c, err
	}
}

// errOwnersChanged is activate's answer when the owners to turn SFTP on for
// changed after their rows were locked.
var errOwnersChanged = tenant.Errorf(tenant.EConflict, "a module request came in during the activation; try again")

// activate is one attempt at ActivateSFTPModule.
func (s *Service) activate(ctx context.Context, accountID string, licences int) (*LicenceChange, error) {
	var locked []string
	// The owners' row locks before the account's, as in SetSFTPAccess (user,
	// then account): the other order could deadlock with a setSftpAccess on
	// one of them. Which owners is read before the account is locked, then
	// checked again under its lock (RequestSFTPModule takes it too).
	lockOwners := func(q tenant.Queryer) error {
		var started bool
		if err := q.GetContext(ctx, &started, `SELECT sftp_trial_started_at IS NOT NULL OR sftp_activated_at IS NOT NULL
			FROM accounts WHERE id = $1`, accountID); err != nil {
			return tenant.NotFoundAs(tenant.DBError(err), "account")
		}
		if started {
			return nil // not the first start: nobody gets SFTP with it
		}
		var err error
		if locked, err = requestingOwners(ctx, q, accountID); err != nil {
			return err
		}
		return lockUsers(ctx, q, locked)
	}
	return s.changeLicences(ctx, accountID, licences, lockOwners, func(q tenant.Queryer, a *tenant.Account) error {
		if tenant.ModuleStatus(a.SFTPStatus) == tenant.ModuleActive {
			return tenant.Errorf(tenant.EConflict, "the SFTP module is already active for this account; change its licences instead")
		}
		now := s.Time()
		var owners []string
		if firstStart(a) {
			var err error
			if owners, err = requestingOwners(ctx, q, a.ID); err != nil {
				return err
			}
			if !subset(owners, locked) {
				return errOwnersChanged
			}
		}
		if err := s.updateModule(ctx, q, a, "sftp_module.activated",
			`sftp_status = 'ACTIVE', sftp_activated_at = $2, sftp_suspended_at = NULL, sftp_licences = $3`, licences); err != nil {
			return err
		}
		own, err := s.ownersSFTPTx(ctx, q, owners)
		if err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `UPDATE sftp_module_requests SET handled_at = $2
			WHERE account_id = $1 AND handled_at IS NULL`, a.ID, now); err != nil {
			return tenant.DBError(err)
		}
		return emailOwners(ctx, q, a.ID, func(o owner) outbox.EmailData {
			return outbox.ModuleActivatedData{OwnerName: o.Name, AccountName: a.Name, ActivatedAt: now, Licences: licences, OwnerSFTP: own[o.ID]}
		})
	})
}

// SetSFTPLicences sets how many SFTP licences the account has (0 to
// MaxLicences), in any module status. Lowering it below the number in use is
// allowed: nobody loses access, the result carries a Warning, and no one else
// can be enabled until enough users are turned off. Support staff only; an
// unknown account is not found.
func (s *Service) SetSFTPLicences(ctx context.Context, accountID string, licences int) (*LicenceChange, error) {
	return s.changeLicences(ctx, accountID, licences, nil, func(q tenant.Queryer, a *tenant.Account) error {
		if a.SFTPLicences == licences {
			return nil
		}
		return s.updateModule(ctx, q, a, "sftp_module.licences_changed", `sftp_licences = $3`, licences)
	})
}

// changeLicences runs a staff change that sets the account's licences, then
// reports the licences as they are. before, if not nil, runs first, before
// the account's lock (see staffOnAccount).
func (s *Service) changeLicences(ctx context.Context, accountID string, licences int, before func(q tenant.Queryer) error,
	change func(q tenant.Queryer, a *tenant.Account) error) (*LicenceChange, error) {
	if _, err := tenant.RequireStaff(ctx); err != nil {
		return nil, err
	}
	if licences < 0 || licences > MaxLicences {
		return nil, tenant.Invalid("licences", "licences must be between 0 and %d", MaxLicences)
	}
	var c *LicenceChange
	err := s.staffOnAccount(ctx, accountID, before, func(q tenant.Queryer, a *tenant.Account) error {
		if err := change(q, a); err != nil {
			return err
		}
		var err error
		c, err = licenceChange(ctx, q, a)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// SuspendSFTPModule stops SFTP for the whole account: logins are refused and
// live sessions end. Nothing is deleted, and ActivateSFTPModule brings it all
// back. Support staff only; an unknown account is not found; a module that was
// never set up, or is already suspended, is an EConflict user error.
func (s *Service) SuspendSFTPModule(ctx context.Context, accountID string) (*tenant.Account, error) {
	var a *tenant.Account
	err := s.staffOnAccount(ctx, accountID, nil, func(q tenant.Queryer, locked *tenant.Account) error {
		a = locked
		switch tenant.ModuleStatus(a.SFTPStatus) {
		case tenant.ModuleNone:
			return tenant.Errorf(tenant.EConflict, "the SFTP module is not set up for this account")
		case tenant.ModuleSuspended:
			return tenant.Errorf(tenant.EConflict, "the SFTP module is already suspended for this account")
		}
		return s.updateModule(ctx, q, a, "sftp_module.suspended", `sftp_status = 'SUSPENDED', sftp_suspended_at = $2`)
	})
	if err != nil {
		return nil, err
	}
	// Every session of the account ends on this node at once; other nodes'
	// sessions end at their next operation (the gate reads the module).
	s.EndAccountSessions(a.ID)
	return a, nil
}

// SFTPLicences returns the account's purchased, used and available licences.
// Owners and administrators of the account and support staff may see them;
// another user of the account is FORBIDDEN; anyone else gets "account not found".
func (s *Service) SFTPLicences(ctx context.Context, accountID string) (*Licences, error) {
	m, refused, err := s.SFTPLicencesOf(ctx, []string{accountID})
	return tenant.OneOf(accountID, m, refused, err, "account")
}

// SFTPLicencesOf is SFTPLicences for many accounts in one statement (support
// staff's page of accounts), by account ID; accounts the principal may not
// see are refused as SFTPLicences refuses them, unknown ones are absent.
func (s *Service) SFTPLicencesOf(ctx context.Context, accountIDs []string) (map[string]*Licences, map[string]error, error) {
	out := make(map[string]*Licences, len(accountIDs))
	refused, err := s.ReadAdminAccounts(ctx, accountIDs, "the account's licences", func(q tenant.Queryer, ids []string) error {
		var rows []struct {
			ID        string `db:"id"`
			Purchased int    `db:"sftp_licences"`
			Used      int    `db:"used"`
		}
		if err := q.SelectContext(ctx, &rows, `SELECT a.id, a.sftp_licences, (SELECT count(*) FROM users u
				WHERE u.account_id = a.id AND u.sftp_enabled AND u.deleted_at IS NULL) AS used
			FROM accounts a WHERE a.id = ANY($1::uuid[])`, tenant.UUIDArray(ids)); err != nil {
			return tenant.DBError(err)
		}
		for _, r := range rows {
			l := newLicences(r.Purchased, r.Used)
			out[r.ID] = &l
		}
		return nil
	})
	return out, refused, err
}

// SendTrialEndingReminders emails the owners of every account whose trial ends
// within three days, once per account: the account is marked in the same
// transaction as the emails, so concurrent runs on several nodes send one
// reminder. It returns how many accounts were reminded. serve calls it hourly
// with SystemContext; staff may run it too; anyone else is FORBIDDEN. An
// account that fails does not stop the others; the errors are joined.
func (s *Service) SendTrialEndingReminders(ctx context.Context) (int, error) {
	if p := tenant.PrincipalFrom(ctx); !tenant.IsSystem(p) && !p.IsStaff() {
		return 0, tenant.Errorf(tenant.EForbidden, "only the system or support staff can send trial reminders")
	}
	now := s.Time()
	const due = `sftp_status = 'TRIAL' AND sftp_trial_reminder_sent_at IS NULL
		AND sftp_trial_ends_at > $1 AND sftp_trial_ends_at <= $2`
	var ids []string
	// The scan crosses tenants (staff scope); each reminder then runs in its tenant.
	if err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tenant.DBError(tx.SelectContext(ctx, &ids, `SELECT id FROM accounts WHERE `+due+` ORDER BY sftp_trial_ends_at`,
			now, now.Add(trialReminderLead)))
	}); err != nil {
		return 0, err
	}
	sent := 0
	var errs []error
	for _, id := range ids {
		claimed := false
		err := s.InAccount(ctx, id, func(q tenant.Queryer) error {
			var rows []*tenant.Account
			// Re-checking the condition in the UPDATE makes the claim atomic.
			if err := q.SelectContext(ctx, &rows, `UPDATE accounts SET sftp_trial_reminder_sent_at = $1
				WHERE id = $3 AND `+due+` RETURNING `+tenant.AccountColumns, now, now.Add(trialReminderLead), id); err != nil {
				return tenant.DBError(err)
			}
			if len(rows) == 0 {
				return nil // another node reminded it, or the module changed meanwhile
			}
			a := rows[0]
			used, err := UsedLicences(ctx, q, a.ID)
			if err != nil {
				return err
			}
			claimed = true
			return emailOwners(ctx, q, a.ID, func(o owner) outbox.EmailData {
				return outbox.ModuleTrialEndingData{OwnerName: o.Name, AccountName: a.Name, EndsAt: *a.SFTPTrialEndsAt,
					Licences: a.SFTPLicences, LicencesUsed: used}
			})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("trial reminder for account %s: %w", id, err))
			continue
		}
		if claimed {
			sent++
		}
	}
	return sent, errors.Join(errs...)
}

// SFTPModuleStatus returns the account's SFTP module status by the service's
// clock: what clients should show, since EXPIRED is never stored.
func (s *Service) SFTPModuleStatus(a *tenant.Account) tenant.ModuleStatus {
	return a.ModuleStatus(s.Time())
}
