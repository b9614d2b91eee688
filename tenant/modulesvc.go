package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
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
	Account  *Account
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
func moduleAuditState(a *Account) map[string]any {
	return map[string]any{"status": a.SFTPStatus, "licences": a.SFTPLicences, "trialEndsAt": a.SFTPTrialEndsAt}
}

// lockAccount loads the account row and locks it until the transaction ends.
// Every change to the module and every enabling of SFTP takes this lock.
func lockAccount(ctx context.Context, q Queryer, accountID string) (*Account, error) {
	if !isUUID(accountID) {
		return nil, NotFound("account")
	}
	var a Account
	if err := q.GetContext(ctx, &a, `SELECT `+accountColumns+` FROM accounts WHERE id = $1 FOR UPDATE`, accountID); err != nil {
		return nil, notFoundAs(dbError(err), "account")
	}
	return &a, nil
}

// updateModule writes the module columns of a (locked) account and audits the
// change as kind, with the state before and after.
func (s *Service) updateModule(ctx context.Context, q Queryer, a *Account, kind, set string, args ...any) error {
	before := moduleAuditState(a)
	args = append([]any{a.ID, s.now()}, args...)
	if err := q.GetContext(ctx, a, `UPDATE accounts SET `+set+`, updated_at = $2 WHERE id = $1 RETURNING `+accountColumns, args...); err != nil {
		return dbError(err)
	}
	return Audit(ctx, q, a.ID, AuditEvent{Kind: kind, TargetKind: "Account", TargetID: a.ID, Before: before, After: moduleAuditState(a)})
}

// emailOwners enqueues one email to each live owner of the account, in the
// caller's transaction.
func emailOwners(ctx context.Context, q Queryer, accountID string, data func(ownerName string) EmailData) error {
	var owners []struct {
		Name  string `db:"name"`
		Email string `db:"email"`
	}
	if err := q.SelectContext(ctx, &owners, `SELECT name, email FROM users
		WHERE account_id = $1 AND role = 'OWNER' AND deleted_at IS NULL ORDER BY created_at, id`, accountID); err != nil {
		return dbError(err)
	}
	for _, o := range owners {
		if err := Enqueue(ctx, q, accountID, Email{To: o.Email, Data: data(o.Name)}); err != nil {
			return err
		}
	}
	return nil
}

// StartSFTPTrial starts the account's free SFTP trial: TRIAL for
// SFTPConfig.TrialDays with SFTPConfig.TrialLicences licences, and an email to
// the owners. Only an owner may start it (FORBIDDEN otherwise), and only once
// per account ever: a second trial, or a trial once the module is set up, is
// an EConflict user error.
func (s *Service) StartSFTPTrial(ctx context.Context) (*Account, error) {
	p, err := RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != RoleOwner {
		return nil, Errorf(EForbidden, "only the account owner can start the SFTP trial")
	}
	days, licences := s.SFTP.TrialDays, s.SFTP.TrialLicences
	if days <= 0 {
		days = defaultTrialDays
	}
	if licences <= 0 {
		licences = defaultTrialLicences
	}
	var a *Account
	err = s.inAccount(ctx, p.AccountID, func(q Queryer) error {
		var err error
		if a, err = lockAccount(ctx, q, p.AccountID); err != nil {
			return err
		}
		switch {
		case a.SFTPTrialStartedAt != nil:
			return Errorf(EConflict, "this account has already had its free SFTP trial; request the SFTP module to keep using SFTP")
		case ModuleStatus(a.SFTPStatus) != ModuleNone:
			return Errorf(EConflict, "the SFTP module is already set up for this account")
		}
		now := s.now()
		ends := now.Add(time.Duration(days) * 24 * time.Hour)
		// GREATEST: support may already have granted more licences than a trial has.
		if err := s.updateModule(ctx, q, a, "sftp_module.trial_started",
			`sftp_status = 'TRIAL', sftp_trial_started_at = $2, sftp_trial_ends_at = $3, sftp_licences = greatest(sftp_licences, $4)`,
			ends, licences); err != nil {
			return err
		}
		return emailOwners(ctx, q, a.ID, func(owner string) EmailData {
			return ModuleTrialStartedData{OwnerName: owner, AccountName: a.Name, StartedAt: now, EndsAt: ends, Licences: a.SFTPLicences}
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
	p, err := requireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	message = strings.TrimSpace(message)
	if !utf8.ValidString(message) {
		return nil, Invalid("message", "message is not valid text")
	}
	if utf8.RuneCountInString(message) > maxRequestMessage {
		return nil, Invalid("message", "message must be at most %d characters", maxRequestMessage)
	}
	var r ModuleRequest
	err = s.inAccount(ctx, p.AccountID, func(q Queryer) error {
		a, err := lockAccount(ctx, q, p.AccountID)
		if err != nil {
			return err
		}
		now := s.now()
		if err := q.GetContext(ctx, &r, `INSERT INTO sftp_module_requests (account_id, requested_by, message, created_at)
			VALUES ($1, $2, $3, $4) RETURNING id, account_id, requested_by, message, created_at, handled_at`,
			a.ID, p.ID, message, now); err != nil {
			return dbError(err)
		}
		r.AccountName, r.RequestedByName, r.RequestedByEmail = a.Name, p.Name, p.Email
		if _, err := q.ExecContext(ctx, `UPDATE accounts SET sftp_requested_at = $2 WHERE id = $1`, a.ID, now); err != nil {
			return dbError(err)
		}
		return Audit(ctx, q, a.ID, AuditEvent{Kind: "sftp_module.requested", TargetKind: "Account", TargetID: a.ID,
			After: map[string]any{"message": message, "status": a.SFTPStatus}})
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// SFTPModuleRequests lists module requests across accounts, oldest first
// (a queue), only the unhandled ones when onlyOpen. Support staff only.
func (s *Service) SFTPModuleRequests(ctx context.Context, onlyOpen bool, page Page) (*Connection[*ModuleRequest], error) {
	if _, err := RequireStaff(ctx); err != nil {
		return nil, err
	}
	limit, after, afterID, err := timeKeyset(page)
	if err != nil {
		return nil, err
	}
	var conn *Connection[*ModuleRequest]
	err = s.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error {
		var rows []*ModuleRequest
		if err := tx.SelectContext(ctx, &rows, `SELECT r.id, r.account_id, a.name AS account_name, r.requested_by,
				u.name AS requested_by_name, u.email AS requested_by_email, r.message, r.created_at, r.handled_at
			FROM sftp_module_requests r
			JOIN accounts a ON a.id = r.account_id
			JOIN users u ON u.account_id = r.account_id AND u.id = r.requested_by
			WHERE (NOT $1 OR r.handled_at IS NULL)
			  AND ($2 = '' OR (r.created_at, r.id) > ($3, nullif($2, '')::uuid))
			ORDER BY r.created_at, r.id LIMIT $4`, onlyOpen, afterID, after, limit+1); err != nil {
			return dbError(err)
		}
		conn = timePage(rows, limit, afterID != "", func(r *ModuleRequest) (time.Time, string) { return r.CreatedAt, r.ID })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// staffOnAccount runs fn for support staff in a transaction scoped to the one
// account they act on, with the account's row locked: the tenant scope (not
// the staff one) lets the change write the account's outbox, and is narrower.
// A malformed or unknown account ID is "account not found".
func (s *Service) staffOnAccount(ctx context.Context, accountID string, fn func(q Queryer, a *Account) error) error {
	if _, err := RequireStaff(ctx); err != nil {
		return err
	}
	if !isUUID(accountID) {
		return NotFound("account")
	}
	return s.inAccount(ctx, accountID, func(q Queryer) error {
		a, err := lockAccount(ctx, q, accountID)
		if err != nil {
			return err
		}
		return fn(q, a)
	})
}

// licenceChange reports the account's licences after a change, with a warning
// when more users have SFTP access than there are licences.
func licenceChange(ctx context.Context, q Queryer, a *Account) (*LicenceChange, error) {
	used, err := usedLicences(ctx, q, a.ID)
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
			plural(used, "user", "users"), have, plural(a.SFTPLicences, "licence", "licences"), over, verb)
	}
	return c, nil
}

// ActivateSFTPModule makes the account's module ACTIVE with the given number
// of licences (0 to MaxLicences), after a purchase. It works from any other
// status: an expired trial or a suspension ends, and users who had SFTP access
// get it back with the same credentials. Open module requests are marked
// handled and the owners are emailed. Support staff only; an unknown account
// is not found; an already active module is an EConflict user error.
func (s *Service) ActivateSFTPModule(ctx context.Context, accountID string, licences int) (*LicenceChange, error) {
	return s.changeLicences(ctx, accountID, licences, func(q Queryer, a *Account) error {
		if ModuleStatus(a.SFTPStatus) == ModuleActive {
			return Errorf(EConflict, "the SFTP module is already active for this account; change its licences instead")
		}
		now := s.now()
		if err := s.updateModule(ctx, q, a, "sftp_module.activated",
			`sftp_status = 'ACTIVE', sftp_activated_at = $2, sftp_suspended_at = NULL, sftp_licences = $3`, licences); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `UPDATE sftp_module_requests SET handled_at = $2
			WHERE account_id = $1 AND handled_at IS NULL`, a.ID, now); err != nil {
			return dbError(err)
		}
		return emailOwners(ctx, q, a.ID, func(owner string) EmailData {
			return ModuleActivatedData{OwnerName: owner, AccountName: a.Name, ActivatedAt: now, Licences: licences}
		})
	})
}

// SetSFTPLicences sets how many SFTP licences the account has (0 to
// MaxLicences), in any module status. Lowering it below the number in use is
// allowed: nobody loses access, the result carries a Warning, and no one else
// can be enabled until enough users are turned off. Support staff only; an
// unknown account is not found.
func (s *Service) SetSFTPLicences(ctx context.Context, accountID string, licences int) (*LicenceChange, error) {
	return s.changeLicences(ctx, accountID, licences, func(q Queryer, a *Account) error {
		if a.SFTPLicences == licences {
			return nil
		}
		return s.updateModule(ctx, q, a, "sftp_module.licences_changed", `sftp_licences = $3`, licences)
	})
}

// changeLicences runs a staff change that sets the account's licences, then
// reports the licences as they are.
func (s *Service) changeLicences(ctx context.Context, accountID string, licences int, change func(q Queryer, a *Account) error) (*LicenceChange, error) {
	if _, err := RequireStaff(ctx); err != nil {
		return nil, err
	}
	if licences < 0 || licences > MaxLicences {
		return nil, Invalid("licences", "licences must be between 0 and %d", MaxLicences)
	}
	var c *LicenceChange
	err := s.staffOnAccount(ctx, accountID, func(q Queryer, a *Account) error {
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
func (s *Service) SuspendSFTPModule(ctx context.Context, accountID string) (*Account, error) {
	var a *Account
	err := s.staffOnAccount(ctx, accountID, func(q Queryer, locked *Account) error {
		a = locked
		switch ModuleStatus(a.SFTPStatus) {
		case ModuleNone:
			return Errorf(EConflict, "the SFTP module is not set up for this account")
		case ModuleSuspended:
			return Errorf(EConflict, "the SFTP module is already suspended for this account")
		}
		return s.updateModule(ctx, q, a, "sftp_module.suspended", `sftp_status = 'SUSPENDED', sftp_suspended_at = $2`)
	})
	if err != nil {
		return nil, err
	}
	// Every session of the account ends on this node at once; other nodes'
	// sessions end at their next operation (the gate reads the module).
	s.endAccountSessions(a.ID)
	return a, nil
}

// SFTPLicences returns the account's purchased, used and available licences.
// Owners and administrators of the account and support staff may see them;
// another user of the account is FORBIDDEN; anyone else gets "account not found".
func (s *Service) SFTPLicences(ctx context.Context, accountID string) (*Licences, error) {
	if err := requireAccountAdmin(ctx, accountID, "the account's licences"); err != nil {
		return nil, err
	}
	var l Licences
	err := s.inAccount(ctx, accountID, func(q Queryer) error {
		var row struct {
			Purchased int `db:"sftp_licences"`
			Used      int `db:"used"`
		}
		if err := q.GetContext(ctx, &row, `SELECT a.sftp_licences, (SELECT count(*) FROM users u
				WHERE u.account_id = a.id AND u.sftp_enabled AND u.deleted_at IS NULL) AS used
			FROM accounts a WHERE a.id = $1`, accountID); err != nil {
			return notFoundAs(dbError(err), "account")
		}
		l = newLicences(row.Purchased, row.Used)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// requireAccountAdmin lets through support staff and the account's owners and
// administrators; what names what the account's other users may not see.
// Staff still need the account to exist; the caller's query decides that.
func requireAccountAdmin(ctx context.Context, accountID, what string) error {
	p := PrincipalFrom(ctx)
	switch {
	case p == nil:
		return Errorf(EUnauthenticated, "log in first")
	case !isUUID(accountID):
		return NotFound("account")
	case p.IsStaff(), p.IsAdmin(accountID):
		return nil
	case p.InAccount(accountID):
		return Errorf(EForbidden, "only owners and administrators can see %s", what)
	default:
		return NotFound("account")
	}
}

// SendTrialEndingReminders emails the owners of every account whose trial ends
// within three days, once per account: the account is marked in the same
// transaction as the emails, so concurrent runs on several nodes send one
// reminder. It returns how many accounts were reminded. serve calls it hourly
// with SystemContext; staff may run it too; anyone else is FORBIDDEN. An
// account that fails does not stop the others; the errors are joined.
func (s *Service) SendTrialEndingReminders(ctx context.Context) (int, error) {
	if p := PrincipalFrom(ctx); !isSystem(p) && !p.IsStaff() {
		return 0, Errorf(EForbidden, "only the system or support staff can send trial reminders")
	}
	now := s.now()
	const due = `sftp_status = 'TRIAL' AND sftp_trial_reminder_sent_at IS NULL
		AND sftp_trial_ends_at > $1 AND sftp_trial_ends_at <= $2`
	var ids []string
	// The scan crosses tenants (staff scope); each reminder then runs in its tenant.
	if err := s.DB.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error {
		return dbError(tx.SelectContext(ctx, &ids, `SELECT id FROM accounts WHERE `+due+` ORDER BY sftp_trial_ends_at`,
			now, now.Add(trialReminderLead)))
	}); err != nil {
		return 0, err
	}
	sent := 0
	var errs []error
	for _, id := range ids {
		claimed := false
		err := s.inAccount(ctx, id, func(q Queryer) error {
			var rows []*Account
			// Re-checking the condition in the UPDATE makes the claim atomic.
			if err := q.SelectContext(ctx, &rows, `UPDATE accounts SET sftp_trial_reminder_sent_at = $1
				WHERE id = $3 AND `+due+` RETURNING `+accountColumns, now, now.Add(trialReminderLead), id); err != nil {
				return dbError(err)
			}
			if len(rows) == 0 {
				return nil // another node reminded it, or the module changed meanwhile
			}
			a := rows[0]
			used, err := usedLicences(ctx, q, a.ID)
			if err != nil {
				return err
			}
			claimed = true
			return emailOwners(ctx, q, a.ID, func(owner string) EmailData {
				return ModuleTrialEndingData{OwnerName: owner, AccountName: a.Name, EndsAt: *a.SFTPTrialEndsAt,
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
