package sftpaccess

import (
	"context"
	"strings"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// Custom SFTP logins are names an account chooses for its users, such as
// "backup" or "j.smith", usable only on the account's dedicated IP. Their
// rules, also in docs/DEDICATED_IPS.md:
//   - 3 to 32 characters, stored and compared in lower case;
//   - letters a–z, digits, '.', '-' and '_', starting with a letter;
//   - never the shape of a login ID ("k7m2-p9xd": four letters or digits, a
//     hyphen, four more), so that no custom login can be taken for the ID
//     of a user of another account, or shadow one of its own account;
//   - unique within the account, case-insensitively, also against deleted
//     users, who keep theirs with the rest of their credentials.
const (
	minCustomLoginLen = 3
	maxCustomLoginLen = 32
)

// normCustomLogin validates a custom login for field and returns it in
// lower case.
func normCustomLogin(field, login string) (string, error) {
	login = strings.ToLower(strings.TrimSpace(login))
	if len(login) < minCustomLoginLen || len(login) > maxCustomLoginLen {
		return "", tenant.Invalid(field, "a custom SFTP login has %d to %d characters", minCustomLoginLen, maxCustomLoginLen)
	}
	if login[0] < 'a' || login[0] > 'z' {
		return "", tenant.Invalid(field, "a custom SFTP login starts with a letter (a–z)")
	}
	for _, r := range login {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '-' && r != '_' {
			return "", tenant.Invalid(field, "a custom SFTP login may contain only the letters a–z, digits, dots, hyphens and underscores")
		}
	}
	if sftplogin.LooksLikeLoginID(login) {
		return "", tenant.Invalid(field, "%q looks like an SFTP login ID (xxxx-xxxx); choose a login that cannot be mistaken for one", login)
	}
	return login, nil
}

// customLogin is the stored custom login, "" when there is none.
func (r credentialsRow) customLogin() string {
	if r.CustomLogin == nil {
		return ""
	}
	return *r.CustomLogin
}

// CustomLoginActive reports whether the custom login works now: the user has
// one and the account has a dedicated IP.
func (c *Credentials) CustomLoginActive() bool {
	return c.CustomLogin != "" && c.DedicatedHost != ""
}

// CustomLoginNote explains why a stored custom login does not work now;
// empty when it works or there is none.
func (c *Credentials) CustomLoginNote() string {
	if c.CustomLogin == "" || c.CustomLoginActive() {
		return ""
	}
	return "This custom login is kept but does not work now: the account has no dedicated IP (it was released). " +
		"It works again once support provisions one; meanwhile log in with the login ID."
}

// SetCustomSFTPLogin gives a user of the principal's account a custom SFTP
// login, or removes it when login is empty. Owners and administrators only
// (FORBIDDEN otherwise), for any user of their account, themselves included;
// a user of another account is not found.
//
// User errors (field "login"): a login that breaks the rules above
// (EInvalid); no dedicated IP, a login another user of the account has, a
// deleted user, a user SFTP was never turned on for (EConflict). If the user
// has SFTP access, they are emailed their credentials with the new login.
func (s *Service) SetCustomSFTPLogin(ctx context.Context, userID, login string) (*tenant.User, error) {
	return s.ChangeUser(ctx, userID, func(_ *tenant.Principal, q tenant.Queryer, u *tenant.User) error {
		return s.SetCustomLoginTx(ctx, q, u, login, "login", u.SFTPEnabled)
	})
}

// SetCustomLoginTx sets u's custom login to login ("" removes it) in the
// caller's transaction, which holds u's row lock; user errors name field.
// sftpEnabledAfter says whether u has SFTP access once the caller's change
// is done: CreateUser and UpdateUser call this before turning SFTP on in the
// same change, so that the credentials email it sends names the login, and
// the user's credentials are issued here if need be. When u keeps SFTP
// access, the change emails the credentials itself.
func (s *Service) SetCustomLoginTx(ctx context.Context, q tenant.Queryer, u *tenant.User, login, field string, sftpEnabledAfter bool) error {
	if u.Deleted() {
		return &tenant.Error{Code: tenant.EConflict, Field: field, Message: "this user is deleted; restore them first"}
	}
	want := ""
	if strings.TrimSpace(login) != "" {
		var err error
		if want, err = normCustomLogin(field, login); err != nil {
			return err
		}
	}
	var rows []credentialsRow
	if err := q.SelectContext(ctx, &rows, `SELECT user_id, login, custom_login, created_at FROM sftp_credentials
		WHERE account_id = $1 AND user_id = $2`, u.AccountID, u.ID); err != nil {
		return tenant.DBError(err)
	}
	var creds credentialsRow
	switch {
	case len(rows) == 1:
		creds = rows[0]
	case want == "":
		return nil // nothing to remove
	case !sftpEnabledAfter:
		return &tenant.Error{Code: tenant.EConflict, Field: field,
			Message: "turn SFTP on for this user first: a custom login is part of their SFTP credentials"}
	default:
		var err error
		if creds, err = ensureCredentials(ctx, q, u); err != nil {
			return err
		}
	}
	had := creds.customLogin()
	if had == want {
		return nil
	}
	if want != "" {
		ip, err := sftplogin.ActiveDedicatedIPTx(ctx, q, u.AccountID)
		if err != nil {
			return err
		}
		if ip == nil {
			return &tenant.Error{Code: tenant.EConflict, Field: field,
				Message: "custom SFTP logins work only on a dedicated IP, and this account has none; ask support to provision one"}
		}
	}
	if _, err := q.ExecContext(ctx, `UPDATE sftp_credentials SET custom_login = nullif($3, '')
		WHERE account_id = $1 AND user_id = $2`, u.AccountID, u.ID, want); err != nil {
		if err = tenant.DBError(err); tenant.ErrorCode(err) == tenant.EConflict {
			return &tenant.Error{Code: tenant.EConflict, Field: field,
				Message: "another user of this account already has the custom login " + want + " (deleted users keep theirs)"}
		}
		return err
	}
	if err := audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "sftp.custom_login_changed", TargetKind: "User", TargetID: u.ID,
		Before: map[string]any{"customLogin": had}, After: map[string]any{"customLogin": want}}); err != nil {
		return err
	}
	if want != "" && u.SFTPEnabled && sftpEnabledAfter {
		a, err := tenant.LockAccount(ctx, q, u.AccountID)
		if err != nil {
			return err
		}
		creds.CustomLogin = &want
		if err := s.enqueueSFTPEnabled(ctx, q, a, u, creds); err != nil {
			return err
		}
	}
	return nil
}

// addDedicatedHostTx completes a credentials email with the account's
// dedicated IP, when it has one: the address, the user's custom login if
// they have one, and the account's host keys after the deployment's, since
// a client sees one or the other depending on where it connects.
func addDedicatedHostTx(ctx context.Context, q tenant.Queryer, accountID string, creds credentialsRow, d *outbox.SFTPEnabledData) error {
	ip, fps, err := sftplogin.DedicatedHostTx(ctx, q, accountID)
	if err != nil || ip == nil {
		return err
	}
	d.DedicatedHost = ip.Address.String()
	d.CustomLogin = creds.customLogin()
	d.HostKeys = append(d.HostKeys, fps...)
	return nil
}
