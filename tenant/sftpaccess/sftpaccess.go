package sftpaccess

import (
	"context"
	"fmt"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftplogin"
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
func (s *Service) SetSFTPAccess(ctx context.Context, userID string, enabled bool) (*tenant.User, error) {
	// The user's row lock (changeUser) comes before the account's (taken by
	// the licence check), in the same order as UpdateUser and RestoreUser.
	u, err := s.ChangeUser(ctx, userID, func(_ *tenant.Principal, q tenant.Queryer, u *tenant.User) error {
		return s.SetAccessTx(ctx, q, u, enabled)
	})
	if err != nil {
		return nil, err
	}
	if !enabled {
		s.EndSessions(u.AccountID, u.ID)
	}
	return u, nil
}

// SetAccessTx turns SFTP access on or off for u inside the caller's
// transaction, which must hold u's row lock. Turning it on takes a licence,
// issues the user's lasting credentials the first time and enqueues the
// sftp_enabled email; turning it off frees the licence. u is updated. The
// caller ends the user's sessions after committing a switch-off.
func (s *Service) SetAccessTx(ctx context.Context, q tenant.Queryer, u *tenant.User, enabled bool) error {
	data, err := s.switchAccessTx(ctx, q, u, enabled)
	if err != nil || data == nil {
		return err
	}
	return outbox.Enqueue(ctx, q, u.AccountID, outbox.Email{To: u.Email, Data: *data})
}

// switchAccessTx is SetAccessTx but for the email: turning access on
// returns what the sftp_enabled email would tell the user, for the caller to
// send (or to put in another email); anything else returns nil.
func (s *Service) switchAccessTx(ctx context.Context, q tenant.Queryer, u *tenant.User, enabled bool) (*outbox.SFTPEnabledData, error) {
	if u.SFTPEnabled == enabled {
		return nil, nil
	}
	var (
		a     *tenant.Account
		creds credentialsRow
		err   error
	)
	if enabled {
		if u.Deleted() {
			return nil, &tenant.Error{Code: tenant.EConflict, Field: "sftpEnabled", Message: "this user is deleted; restore them first"}
		}
		if a, err = s.reserveLicence(ctx, q, u.AccountID, "sftpEnabled"); err != nil {
			return nil, err
		}
		if creds, err = ensureCredentials(ctx, q, u); err != nil {
			return nil, err
		}
	}
	before := u.AuditState()
	now := s.Time()
	if err := q.GetContext(ctx, u, `UPDATE users SET sftp_enabled = $2,
		sftp_enabled_at = CASE WHEN $2 THEN $3 ELSE sftp_enabled_at END, updated_at = $3
		WHERE id = $1 RETURNING `+tenant.UserColumns, u.ID, enabled, now); err != nil {
		return nil, tenant.DBError(err)
	}
	kind := "sftp.disabled"
	if enabled {
		kind = "sftp.enabled"
	}
	if err := audit.Record(ctx, q, u.AccountID, audit.Event{Kind: kind, TargetKind: "User", TargetID: u.ID, Before: before, After: u.AuditState()}); err != nil {
		return nil, err
	}
	if !enabled {
		return nil, nil
	}
	return s.sftpEnabledData(ctx, q, a, u, creds)
}

// RestoreAccessTx is RestoreUser's part for a user who had SFTP access when
// deleted: it takes a licence for them again (a user error when none is free)
// and emails them their credentials, which are the very same as before.
// It runs in RestoreUser's transaction, under the user's row lock.
func (s *Service) RestoreAccessTx(ctx context.Context, q tenant.Queryer, u *tenant.User) error {
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
func (s *Service) enqueueSFTPEnabled(ctx context.Context, q tenant.Queryer, a *tenant.Account, u *tenant.User, creds credentialsRow) error {
	data, err := s.sftpEnabledData(ctx, q, a, u, creds)
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, q, u.AccountID, outbox.Email{To: u.Email, Data: *data})
}

// sftpEnabledData is what the sftp_enabled email tells u: how to connect,
// the host keys to check, and whether they are jailed.
func (s *Service) sftpEnabledData(ctx context.Context, q tenant.Queryer, a *tenant.Account, u *tenant.User, creds credentialsRow) (*outbox.SFTPEnabledData, error) {
	fps, err := sftplogin.HostKeyFingerprintsTx(ctx, q, "")
	if err != nil {
		return nil, err
	}
	jailed, err := sftplogin.JailedTx(ctx, q, u.ID)
	if err != nil {
		return nil, err
	}
	data := outbox.SFTPEnabledData{
		Jailed:      jailed,
		UserName:    u.Name,
		AccountName: a.Name,
		Host:        s.Config.Host,
		Port:        s.Config.Port,
		Login:       creds.Login,
		HostKeys:    fps,
	}
	if err := addDedicatedHostTx(ctx, q, u.AccountID, creds, &data); err != nil {
		return nil, err
	}
	return &data, nil
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
func (s *Service) reserveLicence(ctx context.Context, q tenant.Queryer, accountID, field string) (*tenant.Account, error) {
	a, err := tenant.LockAccount(ctx, q, accountID)
	if err != nil {
		return nil, err
	}
	status := a.ModuleStatus(s.Time())
	if !status.AllowsLogin() {
		return nil, &tenant.Error{Code: tenant.EConflict, Field: field, Message: moduleInactiveMessage(status)}
	}
	used, err := UsedLicences(ctx, q, accountID)
	if err != nil {
		return nil, err
	}
	if used >= a.SFTPLicences {
		return nil, &tenant.Error{Code: tenant.ELimit, Field: field, Message: licencesExhaustedMessage(used, a.SFTPLicences)}
	}
	return a, nil
}

// UsedLicences counts the account's live users with SFTP access.
func UsedLicences(ctx context.Context, q tenant.Queryer, accountID string) (int, error) {
	var used int
	err := q.GetContext(ctx, &used, `SELECT count(*) FROM users WHERE account_id = $1 AND sftp_enabled AND deleted_at IS NULL`, accountID)
	return used, tenant.DBError(err)
}

func moduleInactiveMessage(status tenant.ModuleStatus) string {
	switch status {
	case tenant.ModuleExpired:
		return "the SFTP trial has ended; ask support to activate the SFTP module to turn SFTP access on"
	case tenant.ModuleSuspended:
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
