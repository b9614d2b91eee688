package tenant

import (
	"context"
	"crypto/rand"
	"math/big"
	"time"
)

// loginAlphabet has no characters that are easy to confuse when read aloud or
// typed from paper: no 0/o, 1/l/i, no upper case.
const loginAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// newLoginID returns a random SFTP login ID like "k7m2-p9xd": 8 characters
// from a 31-letter alphabet (about 8.5e11 IDs), grouped for reading aloud.
func newLoginID() (string, error) {
	b := make([]byte, 0, 9)
	n := big.NewInt(int64(len(loginAlphabet)))
	for i := 0; i < 8; i++ {
		if i == 4 {
			b = append(b, '-')
		}
		r, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b = append(b, loginAlphabet[r.Int64()])
	}
	return string(b), nil
}

// takeLicence checks, under a lock on the account row, that turning SFTP on
// for one more user stays within the purchased licences. The lock serialises
// concurrent enablings in one account, so licences are never oversold.
func (s *Service) takeLicence(ctx context.Context, q Queryer, accountID, field string) error {
	var a struct {
		Status      string     `db:"sftp_status"`
		TrialEndsAt *time.Time `db:"sftp_trial_ends_at"`
		Licences    int        `db:"sftp_licences"`
	}
	if err := q.GetContext(ctx, &a, `SELECT sftp_status, sftp_trial_ends_at, sftp_licences FROM accounts WHERE id = $1 FOR UPDATE`, accountID); err != nil {
		return dbError(err)
	}
	status := EffectiveModuleStatus(a.Status, a.TrialEndsAt, s.now())
	if !status.AllowsLogin() {
		return &Error{Code: EConflict, Field: field, Message: moduleInactiveMessage(status)}
	}
	var used int
	if err := q.GetContext(ctx, &used, `SELECT count(*) FROM users WHERE account_id = $1 AND sftp_enabled AND deleted_at IS NULL`, accountID); err != nil {
		return dbError(err)
	}
	if used >= a.Licences {
		return &Error{Code: ELimit, Field: field, Message: licencesExhaustedMessage(used, a.Licences)}
	}
	return nil
}

func moduleInactiveMessage(status ModuleStatus) string {
	switch status {
	case ModuleExpired:
		return "the SFTP trial has ended; ask support to activate the SFTP module to turn SFTP access on"
	case ModuleSuspended:
		return "the SFTP module is suspended; contact support"
	default:
		return "the SFTP module is not active for this account; start a trial or request the module first"
	}
}

func licencesExhaustedMessage(used, purchased int) string {
	return "all SFTP licences are in use (" + itoa(used) + " of " + itoa(purchased) +
		"); turn SFTP off for another user or request more licences from support"
}

// setSFTPAccessTx turns SFTP access on or off for u inside the caller's
// transaction. Turning it on takes a licence and issues the user's lasting
// credentials the first time; turning it off frees the licence. u is updated.
func (s *Service) setSFTPAccessTx(ctx context.Context, q Queryer, u *User, enabled bool) error {
	if u.SFTPEnabled == enabled {
		return nil
	}
	if enabled {
		if u.Deleted() {
			return Errorf(EConflict, "this user is deleted; restore them first")
		}
		if err := s.takeLicence(ctx, q, u.AccountID, "sftpEnabled"); err != nil {
			return err
		}
		if _, err := ensureCredentials(ctx, q, u); err != nil {
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
	return Audit(ctx, q, u.AccountID, AuditEvent{Kind: kind, TargetKind: "User", TargetID: u.ID, Before: before, After: u.auditState()})
}

// ensureCredentials returns u's SFTP login ID, issuing one the first time.
// Credentials are never deleted, so the ID survives SFTP off/on and delete/restore.
func ensureCredentials(ctx context.Context, q Queryer, u *User) (string, error) {
	var login string
	err := q.GetContext(ctx, &login, `SELECT login FROM sftp_credentials WHERE user_id = $1`, u.ID)
	if err == nil {
		return login, nil
	}
	if ErrorCode(dbError(err)) != ENotFound {
		return "", dbError(err)
	}
	for range 8 { // a clash is astronomically rare; retry a few times anyway
		if login, err = newLoginID(); err != nil {
			return "", err
		}
		var got []string
		if err := q.SelectContext(ctx, &got, `INSERT INTO sftp_credentials (user_id, account_id, login) VALUES ($1, $2, $3)
			ON CONFLICT (login) DO NOTHING RETURNING login`, u.ID, u.AccountID, login); err != nil {
			return "", dbError(err)
		}
		if len(got) == 1 {
			return login, nil
		}
	}
	return "", Errorf(EInternal, "could not issue an SFTP login ID")
}
