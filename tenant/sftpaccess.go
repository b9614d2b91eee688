package tenant

import (
	"context"
	"fmt"
)

// SetSFTPAccess turns SFTP access on or off for a user of the principal's
// account. Owners and administrators only (FORBIDDEN otherwise); a user of
// another account is not found.
//
// Turning access on needs the module in TRIAL or ACTIVE and a free licence;
// otherwise it fails with a user error (EConflict or ELimit) and nothing
// changes. The first time, it issues the user's lasting login ID; every time,
// it emails the user their credentials. Turning access off is always allowed,
// frees the licence and ends the user's live SFTP sessions.
func (s *Service) SetSFTPAccess(ctx context.Context, userID string, enabled bool) (*User, error) {
	// The user's row lock (changeUser) comes before the account's (taken by
	// the licence check), in the same order as UpdateUser and RestoreUser.
	u, err := s.changeUser(ctx, userID, func(_ *Principal, q Queryer, u *User) error {
		return s.setSFTPAccessTx(ctx, q, u, enabled)
	})
	if err != nil {
		return nil, err
	}
	if !enabled {
		s.endSessions(u.AccountID, u.ID)
	}
	return u, nil
}

// setSFTPAccessTx turns SFTP access on or off for u inside the caller's
// transaction, which must hold u's row lock. Turning it on takes a licence,
// issues the user's lasting credentials the first time and enqueues the
// sftp_enabled email; turning it off frees the licence. u is updated. The
// caller ends the user's sessions after committing a switch-off.
func (s *Service) setSFTPAccessTx(ctx context.Context, q Queryer, u *User, enabled bool) error {
	if u.SFTPEnabled == enabled {
		return nil
	}
	var (
		a     *Account
		creds credentialsRow
		err   error
	)
	if enabled {
		if u.Deleted() {
			return &Error{Code: EConflict, Field: "sftpEnabled", Message: "this user is deleted; restore them first"}
		}
		if a, err = s.reserveLicence(ctx, q, u.AccountID, "sftpEnabled"); err != nil {
			return err
		}
		if creds, err = ensureCredentials(ctx, q, u); err != nil {
			return err
		}
	}
	before := u.auditState()
	now := s.now()
	if err := q.GetContext(ctx, u, `UPDATE users SET sftp_enabled = $2,
		sftp_enabled_at = CASE WHEN $2 THEN $3 ELSE sftp_enabled_at END, updated_at = $3
		WHERE id = $1 RETURNING `+userColumns, u.ID, enabled, now); err != nil {
		return dbError(err)
	}
	kind := "sftp.disabled"
	if enabled {
		kind = "sftp.enabled"
	}
	if err := Audit(ctx, q, u.AccountID, AuditEvent{Kind: kind, TargetKind: "User", TargetID: u.ID, Before: before, After: u.auditState()}); err != nil {
		return err
	}
	if !enabled {
		return nil
	}
	return s.enqueueSFTPEnabled(ctx, q, a, u, creds)
}

// restoreSFTPAccessTx is RestoreUser's part for a user who had SFTP access when
// deleted: it takes a licence for them again (a user error when none is free)
// and emails them their credentials, which are the very same as before.
// It runs in RestoreUser's transaction, under the user's row lock.
func (s *Service) restoreSFTPAccessTx(ctx context.Context, q Queryer, u *User) error {
	if !u.SFTPEnabled {
		return nil
	}
	a, err := s.reserveLicence(ctx, q, u.AccountID, "id")
	if err != nil {
		return err
	}
	creds, err := ensureCredentials(ctx, q, u)
	if err != nil {
		return err
	}
	return s.enqueueSFTPEnabled(ctx, q, a, u, creds)
}

// enqueueSFTPEnabled writes the "your SFTP access" email to u in the caller's
// transaction, so it goes out exactly when the change commits. It never holds
// a password.
func (s *Service) enqueueSFTPEnabled(ctx context.Context, q Queryer, a *Account, u *User, creds credentialsRow) error {
	fps, err := hostKeyFingerprintsTx(ctx, q, "")
	if err != nil {
		return err
	}
	data := SFTPEnabledData{
		UserName:    u.Name,
		AccountName: a.Name,
		Host:        s.SFTP.Host,
		Port:        s.SFTP.Port,
		Login:       creds.Login,
		HostKeys:    fps,
	}
	if err := addDedicatedHostTx(ctx, q, u.AccountID, creds, &data); err != nil {
		return err
	}
	return Enqueue(ctx, q, u.AccountID, Email{To: u.Email, Data: data})
}

// reserveLicence locks the account row (SELECT ... FOR UPDATE), then checks
// that the module allows SFTP and that a licence is free, and returns the
// account. The caller need not hold any lock before; it then turns SFTP on
// (or un-deletes a user with it) before its transaction commits.
//
// The lock serialises every enabling in one account: a second transaction
// waits at the lock, and once the first commits, its count (a new statement
// under READ COMMITTED) sees the first one's user. So licences are never
// oversold, however many requests race. Lowering licences (SetSFTPLicences)
// takes the same lock.
func (s *Service) reserveLicence(ctx context.Context, q Queryer, accountID, field string) (*Account, error) {
	a, err := lockAccount(ctx, q, accountID)
	if err != nil {
		return nil, err
	}
	status := a.ModuleStatus(s.now())
	if !status.AllowsLogin() {
		return nil, &Error{Code: EConflict, Field: field, Message: moduleInactiveMessage(status)}
	}
	used, err := usedLicences(ctx, q, accountID)
	if err != nil {
		return nil, err
	}
	if used >= a.SFTPLicences {
		return nil, &Error{Code: ELimit, Field: field, Message: licencesExhaustedMessage(used, a.SFTPLicences)}
	}
	return a, nil
}

// usedLicences counts the account's live users with SFTP access.
func usedLicences(ctx context.Context, q Queryer, accountID string) (int, error) {
	var used int
	err := q.GetContext(ctx, &used, `SELECT count(*) FROM users WHERE account_id = $1 AND sftp_enabled AND deleted_at IS NULL`, accountID)
	return used, dbError(err)
}

func moduleInactiveMessage(status ModuleStatus) string {
	switch status {
	case ModuleExpired:
		return "the SFTP trial has ended; ask support to activate the SFTP module to turn SFTP access on"
	case ModuleSuspended:
		return "the SFTP module is suspended for this account; contact support"
	default:
		return "the SFTP module is not active for this account; start the free trial or request the module first"
	}
}

func licencesExhaustedMessage(used, purchased int) string {
	if purchased == 0 {
		return "this account has no SFTP licences; request licences from support to turn SFTP access on"
	}
	return fmt.Sprintf("no SFTP licence is free: %d of %d are in use; turn SFTP off for another user, "+
		"or request more licences from support", used, purchased)
}

// plural formats "1 user" / "2 users".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}
