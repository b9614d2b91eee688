package sftpaccess

import (
	"context"
	"crypto/rand"
	"math/big"
	"slices"
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// Credentials are what a user needs to connect with an SFTP client. There is
// never a password in them: users log in with their account password or one
// of their SSH keys.
type Credentials struct {
	UserID string
	Host   string // public SFTP host name
	Port   int
	Login  string // the lasting login ID, e.g. "k7m2-p9xd"
	// CustomLogin is the user's own login on the account's dedicated IP; empty
	// when they have none. It is kept when the dedicated IP is released, but
	// works only while the account has one: see CustomLoginActive.
	CustomLogin         string
	IssuedAt            time.Time
	HostKeyFingerprints []outbox.HostKeyFingerprint // what the client should see on first connection
	// DedicatedHost is the account's dedicated IP, where CustomLogin (and
	// Login) work; empty while the account has none.
	DedicatedHost string
	// DedicatedHostKeyFingerprints are the account's own host keys, which the
	// server presents on DedicatedHost; empty while the account has none.
	DedicatedHostKeyFingerprints []outbox.HostKeyFingerprint
}

// credentialsRow is a stored sftp_credentials row.
type credentialsRow struct {
	UserID      string    `db:"user_id"`
	Login       string    `db:"login"`
	CustomLogin *string   `db:"custom_login"`
	CreatedAt   time.Time `db:"created_at"`
}

func (s *Service) credentials(r credentialsRow, fps []outbox.HostKeyFingerprint) *Credentials {
	c := &Credentials{UserID: r.UserID, Host: s.Config.Host, Port: s.Config.Port, Login: r.Login,
		IssuedAt: r.CreatedAt, HostKeyFingerprints: slices.Clone(fps)}
	if r.CustomLogin != nil {
		c.CustomLogin = *r.CustomLogin
	}
	return c
}

// mayViewCredentialsOf reports whether p may see userID's SFTP credentials in
// p's account: owners and administrators anyone's, users their own.
func mayViewCredentialsOf(p *tenant.Principal, userID string) bool {
	return p.IsAdmin(p.AccountID) || p.ID == userID
}

// SFTPCredentials returns a user's SFTP credentials, or nil when SFTP has never
// been turned on for them. Credentials outlive SFTP being turned off and the
// user being deleted, so they are shown then too (to admins: a deleted user
// sees nothing). The user themselves and the account's owners and
// administrators may see them; for anyone else the user is not found.
func (s *Service) SFTPCredentials(ctx context.Context, userID string) (*Credentials, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if !mayViewCredentialsOf(p, userID) {
		return nil, tenant.NotFound("user")
	}
	var c *Credentials
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		u, err := tenant.GetUser(ctx, q, userID, false)
		if err != nil {
			return err
		}
		if u.Deleted() && !p.IsAdmin(p.AccountID) {
			return tenant.NotFound("user")
		}
		found, err := s.credentialsTx(ctx, q, p.AccountID, []string{u.ID}, true)
		c = found[u.ID]
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// SFTPCredentialsForUsers loads the credentials of several users of accountID
// in one query, for dataloaders. Support staff see any account's (they hold
// no secret: login, host, fingerprints), deleted users' too. Users without
// credentials, users whose credentials the principal may not see and IDs that
// match no user are absent from the map.
func (s *Service) SFTPCredentialsForUsers(ctx context.Context, accountID string, userIDs []string) (map[string]*Credentials, error) {
	p := tenant.PrincipalFrom(ctx)
	if !p.InAccount(accountID) && !p.IsStaff() {
		return map[string]*Credentials{}, nil
	}
	visible := make([]string, 0, len(userIDs))
	for _, id := range userIDs {
		if p.IsStaff() || mayViewCredentialsOf(p, id) { // support reads any account's
			visible = append(visible, id)
		}
	}
	if len(visible) == 0 {
		return map[string]*Credentials{}, nil
	}
	var out map[string]*Credentials
	err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var err error
		// A plain user's own credentials are hidden once they are deleted, as in SFTPCredentials.
		out, err = s.credentialsTx(ctx, q, accountID, visible, p.IsAdmin(accountID) || p.IsStaff())
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// credentialsTx loads the credentials of the given users of accountID, those
// of deleted users only if withDeleted. Users without credentials are absent.
func (s *Service) credentialsTx(ctx context.Context, q tenant.Queryer, accountID string, userIDs []string, withDeleted bool) (map[string]*Credentials, error) {
	var rows []credentialsRow
	if err := q.SelectContext(ctx, &rows, `SELECT c.user_id, c.login, c.custom_login, c.created_at
		FROM sftp_credentials c JOIN users u ON u.account_id = c.account_id AND u.id = c.user_id
		WHERE c.account_id = $1 AND c.user_id = ANY($2::uuid[]) AND ($3 OR u.deleted_at IS NULL)`,
		accountID, tenant.UUIDArray(userIDs), withDeleted); err != nil {
		return nil, tenant.DBError(err)
	}
	out := make(map[string]*Credentials, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	fps, err := sftplogin.HostKeyFingerprintsTx(ctx, q, "")
	if err != nil {
		return nil, err
	}
	ip, dedicatedFps, err := sftplogin.DedicatedHostTx(ctx, q, accountID)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		c := s.credentials(r, fps)
		if ip != nil {
			c.DedicatedHost, c.DedicatedHostKeyFingerprints = ip.Address.String(), slices.Clone(dedicatedFps)
		}
		out[r.UserID] = c
	}
	return out, nil
}

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

// ensureCredentials returns u's stored SFTP credentials, issuing a login ID the
// first time. Credentials are never deleted, so the ID survives SFTP off/on and
// delete/restore.
func ensureCredentials(ctx context.Context, q tenant.Queryer, u *tenant.User) (credentialsRow, error) {
	var rows []credentialsRow
	if err := q.SelectContext(ctx, &rows, `SELECT user_id, login, custom_login, created_at FROM sftp_credentials
		WHERE account_id = $1 AND user_id = $2`, u.AccountID, u.ID); err != nil {
		return credentialsRow{}, tenant.DBError(err)
	}
	if len(rows) == 1 {
		return rows[0], nil
	}
	for range 8 { // a clash is astronomically rare; retry a few times anyway
		login, err := newLoginID()
		if err != nil {
			return credentialsRow{}, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
		}
		// ON CONFLICT (login) only: a second issue for the same user is a bug
		// (the caller holds the user's row lock) and must fail, not be hidden.
		if err := q.SelectContext(ctx, &rows, `INSERT INTO sftp_credentials (user_id, account_id, login) VALUES ($1, $2, $3)
			ON CONFLICT (login) DO NOTHING RETURNING user_id, login, custom_login, created_at`, u.ID, u.AccountID, login); err != nil {
			return credentialsRow{}, tenant.DBError(err)
		}
		if len(rows) == 1 {
			return rows[0], nil
		}
	}
	return credentialsRow{}, tenant.Errorf(tenant.EInternal, "could not issue an SFTP login ID")
}
