package sftplogin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/skiffhq/skiff/tenant"
	"golang.org/x/crypto/ssh"
)

// ErrLoginFailed is the one answer to every refused SFTP login: unknown
// login, wrong password, key not registered, deleted user, SFTP turned off,
// module not active. Directory methods wrap it with the real reason
// ("…: login failed: unknown login") for the server log; errors.Is finds it,
// and ErrorMessage gives the same text whatever the reason, which is all a
// client may ever learn.
var ErrLoginFailed = &tenant.Error{Code: tenant.EUnauthenticated, Message: "login failed"}

// ErrSFTPAccessWithdrawn is what SessionAllowed returns, wrapped with the
// reason, once a logged-in user may no longer use SFTP.
var ErrSFTPAccessWithdrawn = &tenant.Error{Code: tenant.EForbidden, Message: "SFTP access has been withdrawn"}

// maxLoginLen bounds a login name before it reaches the database; generated
// login IDs and custom logins are far shorter.
const maxLoginLen = 200

// Directory resolves SFTP credentials across tenants, before the account is
// known, through the narrow "directory" database scope, routing each login
// by the address the client connected to: an account's dedicated IP, which
// it knows from its copy of the dedicated IPs in use (see Listen), or a
// shared address (see loginQuery). It also serves the host keys: the
// deployment's, or an account's on its dedicated IP.
// A Directory must not be copied after first use.
type Directory struct {
	DB  *tenant.DB
	Now func() time.Time

	// VerifyPassword checks a password against its stored hash; nil means
	// tenant.VerifyPassword. Tests replace it to count verifications.
	VerifyPassword func(ctx context.Context, encoded, password string) (bool, error)

	// Cipher encrypts the host keys it generates and decrypts stored ones;
	// nil stores them unencrypted (see HostKeyCipher).
	Cipher *HostKeyCipher

	hostKeysMu sync.Mutex
	hostKeys   []ssh.Signer // the deployment's, loaded once: host keys never change

	accountKeysMu sync.Mutex
	accountKeys   map[string]accountHostKeys // by account ID: parsed once, see accountSigners

	routes dedicatedRoutes // the dedicated IPs in use; see Listen

	// loginStmt is loginQuery, prepared once: lib/pq then sends each login
	// in one round trip (an unprepared statement with parameters takes two).
	loginStmtMu sync.Mutex
	loginStmt   *sqlx.Stmt

	// recentLogins is when this node last recorded each user's SFTP login
	// (see MarkLogin), so that logins within a minute cost no statement.
	recentMu     sync.Mutex
	recentLogins map[string]time.Time
}

// NewDirectory returns a Directory on db with the real clock.
func NewDirectory(db *tenant.DB) *Directory {
	return &Directory{DB: db, Now: time.Now}
}

func (d *Directory) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

// Login is who a successful SFTP authentication resolved to.
type Login struct {
	AccountID string
	UserID    string
	// Login is the user's login ID, also when they logged in with their
	// custom login on the account's dedicated IP: it names them in logs.
	Login string
	// KeyID and KeyFingerprint name the key of a public-key login; empty
	// after a password login.
	KeyID          string
	KeyFingerprint string
	// PasswordDigest identifies the password of a password login (a
	// SHA-256 of its stored hash, hex): the session gate ends the session
	// once the password changes. Empty after a key login.
	PasswordDigest string
	// KeyLastUsedAt is when the key last logged in, as the lookup read it.
	KeyLastUsedAt *time.Time
	// KeyExpiresAt is when the key expires, as the lookup read it; nil for
	// a key without expiry and after a password login. The session ends then.
	KeyExpiresAt *time.Time
	// Remote is the client's address the login came from: the session
	// gate checks it against the IP allowlists as they change.
	Remote netip.Addr
	// Jailed users see only the folders shared with them: their group does
	// not grant SFTP access to My Files (see the "jailed" column of loginQuery).
	Jailed bool
	// LoginUsed is the name the client logged in with: Login, or the
	// user's custom login on the account's dedicated IP. The SSH server
	// sets it; the activity log shows it.
	LoginUsed string
}

// loginRecord is everything a login decision needs, read in one query.
type loginRecord struct {
	AccountID    string     `db:"account_id"`
	UserID       string     `db:"user_id"`
	Login        string     `db:"login"`
	PasswordHash string     `db:"password_hash"`
	Live         bool       `db:"live"`
	SFTPEnabled  bool       `db:"sftp_enabled"`
	ModuleStatus string     `db:"sftp_status"`
	TrialEndsAt  *time.Time `db:"sftp_trial_ends_at"`
	Jailed       bool       `db:"jailed"`
	KeyID        *string    `db:"key_id"`
	KeyBlob      []byte     `db:"key_blob"`
	KeyLastUsed  *time.Time `db:"key_last_used_at"`
	KeyStatus    *string    `db:"key_status"`
	KeyExpiresAt *time.Time `db:"key_expires_at"`
	// The IP allowlists of the account and of the user (empty: no restriction).
	AccountAllowlist pq.StringArray `db:"account_allowlist"`
	UserAllowlist    pq.StringArray `db:"user_allowlist"`
}

// loginQuery is the one cross-tenant read of an SFTP login: the function
// skiff_sftp_login (migration 00008, which says what it matches; 00050
// added the key's status and expiry) resolves
// a login ($1, lowercase) that reached an address routed to the account $2
// (NULL for a shared address) to the user, their account's module state
// and the user's key with fingerprint $3 (empty matches no key). The route
// comes from the Directory's copy of the dedicated IPs in use (see Listen).
// The function scopes itself like a "directory" transaction (runtime role,
// row-level security, the directory scope) and so runs outside one: a
// login costs one round trip to PostgreSQL. The IP allowlists of the
// account and the user come in the same statement, from the function
// skiff_sftp_allowlists (migration 00055), which scopes itself alike.
const loginQuery = `SELECT l.account_id, l.user_id, l.login, l.password_hash, l.live, l.sftp_enabled, l.sftp_status,
	l.sftp_trial_ends_at, l.jailed, l.key_id, l.key_blob, l.key_last_used_at, l.key_status, l.key_expires_at,
	coalesce(w.account_allowlist, '{}') AS account_allowlist, coalesce(w.user_allowlist, '{}') AS user_allowlist
	FROM skiff_sftp_login($1, $2::uuid, $3) l
	LEFT JOIN LATERAL skiff_sftp_allowlists(l.account_id, l.user_id) w ON true`

// jailedColumn says whether the user u is jailed: unless their group grants
// My Files, which Jailed Users never does. It is the rule of package policy,
// on the rows the policy reads, so that logins (skiff_sftp_login has the
// same column) and the session gate decide it in the query they already make.
const jailedColumn = `NOT EXISTS (SELECT 1 FROM groups g WHERE g.account_id = u.account_id AND g.id = u.group_id
           AND g.builtin IS DISTINCT FROM 'JAILED' AND 'SFTP_MY_FILES' = ANY (g.permissions)) AS jailed`

// JailedTx says whether the user is jailed (sees only /Projects Shared With
// Me/ over SFTP), inside the caller's transaction, by the rule of jailedColumn.
func JailedTx(ctx context.Context, q tenant.Queryer, userID string) (bool, error) {
	var jailed bool
	err := q.GetContext(ctx, &jailed, `SELECT `+jailedColumn+` FROM users u WHERE u.id = $1`, userID)
	return jailed, tenant.DBError(err)
}

// preparedLogin returns loginQuery prepared on the pool; database/sql
// prepares it on each connection that runs it, once.
func (d *Directory) preparedLogin(ctx context.Context) (*sqlx.Stmt, error) {
	d.loginStmtMu.Lock()
	defer d.loginStmtMu.Unlock()
	if d.loginStmt == nil {
		stmt, err := d.DB.X.PreparexContext(ctx, loginQuery)
		if err != nil {
			return nil, tenant.DBError(fmt.Errorf("prepare the login query: %w", err))
		}
		d.loginStmt = stmt
	}
	return d.loginStmt, nil
}

// lookupLogin reads the login's record; nil when no such login exists on
// dest. Login names that cannot exist are not sent to the database.
func (d *Directory) lookupLogin(ctx context.Context, dest netip.Addr, login, fingerprint string) (*loginRecord, error) {
	login = strings.ToLower(login)
	if login == "" || len(login) > maxLoginLen || !utf8.ValidString(login) || strings.ContainsRune(login, 0) {
		return nil, nil
	}
	route, err := d.dedicatedRoute(ctx, dest)
	if err != nil {
		return nil, err
	}
	var account any // NULL: a shared address
	if route != nil {
		account = route.accountID
	}
	stmt, err := d.preparedLogin(ctx)
	if err != nil {
		return nil, err
	}
	// No transaction: the function scopes itself (see loginQuery).
	var recs []loginRecord
	if err := stmt.SelectContext(ctx, &recs, login, account, fingerprint); err != nil {
		return nil, tenant.DBError(err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return &recs[0], nil // see loginQuery: at most one row
}

// accessRefusal says why a user may not use SFTP now, or "" if they may.
func accessRefusal(live, sftpEnabled bool, moduleStatus string, trialEndsAt *time.Time, now time.Time) string {
	switch {
	case !live:
		return "user is deleted"
	case !sftpEnabled:
		return "SFTP access is off for the user"
	}
	if st := tenant.EffectiveModuleStatus(moduleStatus, trialEndsAt, now); !st.AllowsLogin() {
		return "SFTP module is " + string(st)
	}
	return ""
}

func loginFailed(reason string) error { return fmt.Errorf("%w: %s", ErrLoginFailed, reason) }

// Refusal is a refused login of a known user: the account's activity log
// records it with its reason (which, like every refusal's, is never told
// to the client). It wraps ErrLoginFailed.
type Refusal struct {
	AccountID, UserID string
	Reason            string
}

func (r *Refusal) Error() string { return ErrLoginFailed.Error() + ": " + r.Reason }
func (r *Refusal) Unwrap() error { return ErrLoginFailed }

// refused is the refusal of rec's login for reason.
func (r *loginRecord) refused(reason string) error {
	return &Refusal{AccountID: r.AccountID, UserID: r.UserID, Reason: reason}
}

// allowlistRefusal says why remote may not log in under the record's IP
// allowlists, or "" if it may.
func (r *loginRecord) allowlistRefusal(remote netip.Addr) string {
	switch {
	case !tenant.IPAllowed(r.AccountAllowlist, remote):
		return "address " + remote.String() + " is not in the account's IP allowlist"
	case !tenant.IPAllowed(r.UserAllowlist, remote):
		return "address " + remote.String() + " is not in the user's IP allowlist"
	}
	return ""
}

func (r *loginRecord) sftpLogin() *Login {
	return &Login{AccountID: r.AccountID, UserID: r.UserID, Login: r.Login, Jailed: r.Jailed}
}

// PasswordLogin checks a login ID and account password. Exactly one argon2id
// verification runs whatever the outcome (against a dummy hash when the
// login is unknown), so timing does not tell an unknown login from a wrong
// password. Every refusal wraps ErrLoginFailed; other errors are outages.
// Every attempt is counted before hashing, like web logins (see
// tenant.CountLoginAttempt): repeated attempts at one login are slowed down,
// and from one address blocked; a blocked attempt is refused without
// hashing, so a password-guessing flood costs little CPU.
func (d *Directory) PasswordLogin(ctx context.Context, dest, remote netip.Addr, login, password string) (*Login, error) {
	// Counted, and committed, before the password is hashed: parallel
	// guesses all count (see tenant.CountLoginAttempt).
	attempt, err := d.DB.CountLoginAttempt(ctx, tenant.ScopeDirectory, "sftp", throttledLogin(dest, login), remote, d.now())
	if err != nil {
		return nil, err
	}
	if attempt.Wait > 0 {
		return nil, loginFailed("too many failed logins for this login from this address, or from this address; wait " + attempt.Wait.Round(time.Second).String())
	}
	if err := attempt.Pause(ctx); err != nil {
		return nil, err
	}
	l, err := d.passwordLogin(ctx, dest, remote, login, password)
	if err != nil {
		return nil, err
	}
	if err := d.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) error { return attempt.Succeeded(ctx, tx) }); err != nil {
		return nil, err
	}
	return l, nil
}

func (d *Directory) passwordLogin(ctx context.Context, dest, remote netip.Addr, login, password string) (*Login, error) {
	rec, err := d.lookupLogin(ctx, dest, login, "")
	if err != nil {
		return nil, err
	}
	hash := ""
	if rec != nil {
		hash = rec.PasswordHash
	}
	verify := d.VerifyPassword
	if verify == nil {
		verify = tenant.VerifyPassword
	}
	ok, err := verify(ctx, hash, password)
	if err != nil {
		return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("verify SFTP password: %w", err)}
	}
	switch {
	case rec == nil:
		return nil, loginFailed("unknown login")
	case hash == "":
		return nil, rec.refused("the user has no password")
	case !ok:
		return nil, rec.refused("wrong password")
	}
	if why := accessRefusal(rec.Live, rec.SFTPEnabled, rec.ModuleStatus, rec.TrialEndsAt, d.now()); why != "" {
		return nil, rec.refused(why)
	}
	if why := rec.allowlistRefusal(remote); why != "" {
		return nil, rec.refused(why)
	}
	l := rec.sftpLogin()
	l.PasswordDigest = passwordDigest(hash)
	l.Remote = remote
	return l, nil
}

// passwordDigest is Login.PasswordDigest of a stored hash; the session gate
// computes the same in SQL (sha256 of the hash's UTF-8 bytes, hex).
func passwordDigest(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(sum[:])
}

// PublicKeyLogin answers whether key is one of login's SSH keys and the user
// may use SFTP now. The SSH server also asks this for keys a client merely
// offers, before any signature proves possession, so it records nothing: the
// server calls MarkKeyUsed once authentication has succeeded. Every refusal
// wraps ErrLoginFailed; other errors are outages.
func (d *Directory) PublicKeyLogin(ctx context.Context, dest, remote netip.Addr, login string, key ssh.PublicKey) (*Login, error) {
	if key == nil {
		return nil, loginFailed("no key")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, loginFailed("certificates are not accepted")
	}
	fingerprint := ssh.FingerprintSHA256(key)
	rec, err := d.lookupLogin(ctx, dest, login, fingerprint)
	if err != nil {
		return nil, err
	}
	switch {
	case rec == nil:
		return nil, loginFailed("unknown login")
	// Compare the whole key, not only its hash, so a match is exact.
	case rec.KeyID == nil || !bytes.Equal(rec.KeyBlob, key.Marshal()):
		return nil, rec.refused("key " + fingerprint + " is not one of the user's keys")
	// A disabled or expired key is refused like a key the user does not have.
	case rec.KeyStatus == nil || *rec.KeyStatus != "ACTIVE":
		return nil, rec.refused("key " + fingerprint + " is disabled")
	case rec.KeyExpiresAt != nil && !d.now().Before(*rec.KeyExpiresAt):
		return nil, rec.refused("key " + fingerprint + " expired at " + rec.KeyExpiresAt.UTC().Format(time.RFC3339))
	}
	if why := accessRefusal(rec.Live, rec.SFTPEnabled, rec.ModuleStatus, rec.TrialEndsAt, d.now()); why != "" {
		return nil, rec.refused(why)
	}
	if why := rec.allowlistRefusal(remote); why != "" {
		return nil, rec.refused(why)
	}
	l := rec.sftpLogin()
	l.KeyID, l.KeyFingerprint, l.KeyLastUsedAt, l.KeyExpiresAt = *rec.KeyID, fingerprint, rec.KeyLastUsed, rec.KeyExpiresAt
	l.Remote = remote
	return l, nil
}

// keyUseGranularity is how stale last_used_at may get: a key used again
// within it is not written again, so busy automated clients cost no writes.
// The user's last SFTP login (sftp_credentials.last_login_at) is kept to
// the same granularity.
const keyUseGranularity = time.Minute

// MarkKeyUsed records that the key of a public-key login just logged in,
// and so did its user (their last SFTP login). The SSH server calls it after
// authentication succeeded. When the lookup saw the key used within
// keyUseGranularity, it writes nothing and costs no round trip: busy
// automated clients log in without database writes. Otherwise it is one
// statement. A deleted key or a bad ID is not an error.
func (d *Directory) MarkKeyUsed(ctx context.Context, l *Login) error {
	if !tenant.IsUUID(l.AccountID) || !tenant.IsUUID(l.KeyID) {
		return nil
	}
	now := d.now()
	if l.KeyLastUsedAt != nil && now.Sub(*l.KeyLastUsedAt) < keyUseGranularity {
		return nil
	}
	d.noteLogin(l.UserID, now)
	return d.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `WITH k AS (UPDATE ssh_keys SET last_used_at = $3
			WHERE account_id = $1 AND id = $2 AND (last_used_at IS NULL OR last_used_at < $4) RETURNING user_id)
			UPDATE sftp_credentials c SET last_login_at = $3 FROM k
			WHERE c.account_id = $1 AND c.user_id = k.user_id AND (c.last_login_at IS NULL OR c.last_login_at < $4)`,
			l.AccountID, l.KeyID, now, now.Add(-keyUseGranularity))
		return tenant.DBError(err)
	})
}

// maxRecentLogins bounds the Directory's memory of recent logins; past it
// the memory starts over (costing at most one write per user again).
const maxRecentLogins = 100_000

// noteLogin remembers that userID's login at now is being recorded, and
// reports whether it needs writing: false when this node recorded one of
// theirs within keyUseGranularity.
func (d *Directory) noteLogin(userID string, now time.Time) bool {
	d.recentMu.Lock()
	defer d.recentMu.Unlock()
	if last, ok := d.recentLogins[userID]; ok && now.Sub(last) < keyUseGranularity && !now.Before(last) {
		return false
	}
	if d.recentLogins == nil || len(d.recentLogins) >= maxRecentLogins {
		d.recentLogins = map[string]time.Time{}
	}
	d.recentLogins[userID] = now
	return true
}

// MarkLogin records that a password login of l's user just succeeded, as
// their last SFTP login, at most once per keyUseGranularity: a login within
// it of one this node recorded costs nothing, and the statement writes only
// when the stored time is older (another node may have written it). The SSH
// server calls it after authentication, off the login's path. Key logins
// are recorded by MarkKeyUsed instead.
func (d *Directory) MarkLogin(ctx context.Context, l *Login) error {
	if !tenant.IsUUID(l.AccountID) || !tenant.IsUUID(l.UserID) || l.KeyID != "" {
		return nil
	}
	now := d.now()
	if !d.noteLogin(l.UserID, now) {
		return nil
	}
	return d.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sftp_credentials SET last_login_at = $3
			WHERE account_id = $1 AND user_id = $2 AND (last_login_at IS NULL OR last_login_at < $4)`,
			l.AccountID, l.UserID, now, now.Add(-keyUseGranularity))
		return tenant.DBError(err)
	})
}

// SessionAllowed is the gate before each SFTP operation: it returns nil while
// the user is live, has SFTP access, the account's module allows logins and
// the user is still jailed if and only if jailed says so (the session's
// tree was made for that), and an error wrapping ErrSFTPAccessWithdrawn
// once any of that stops being true, so sessions end when access is
// withdrawn and clients reconnect to the tree a jail change gives them.
// It is one query, since it runs about once a second per busy session.
// Other errors are outages.
func (d *Directory) SessionAllowed(ctx context.Context, accountID, userID string, jailed bool) error {
	return d.LoginAllowed(ctx, &Login{AccountID: accountID, UserID: userID, Jailed: jailed})
}

// LoginAllowed is SessionAllowed for the session l opened, which also ends
// once the credential it logged in with is revoked: its SSH key deleted,
// disabled or expired by the Directory's clock (l.KeyID), or its password
// changed or reset (l.PasswordDigest); and once l.Remote (when known) is no
// longer in the account's or the user's IP allowlist. Like SessionAllowed,
// it is one query.
func (d *Directory) LoginAllowed(ctx context.Context, l *Login) error {
	_, err := d.CheckLogin(ctx, l)
	return err
}

// Access is what a successful CheckLogin learnt besides "yes".
type Access struct {
	// KeyExpiresAt is the session's key's expiry now (it may have been
	// edited since the login); nil without one.
	KeyExpiresAt *time.Time
}

// CheckLogin is LoginAllowed, also returning the key's current expiry so
// that the caller can end the session when it passes. Refusals wrap
// ErrSFTPAccessWithdrawn; any other error means the database could not
// answer (an outage), not that access is gone.
func (d *Directory) CheckLogin(ctx context.Context, l *Login) (Access, error) {
	if !tenant.IsUUID(l.AccountID) || !tenant.IsUUID(l.UserID) || (l.KeyID != "" && !tenant.IsUUID(l.KeyID)) {
		return Access{}, fmt.Errorf("%w: no such user", ErrSFTPAccessWithdrawn)
	}
	var keyID any // NULL: not a key login
	if l.KeyID != "" {
		keyID = l.KeyID
	}
	now := d.now()
	var recs []struct {
		loginRecord
		KeyLive      bool       `db:"key_live"`
		KeyExpiry    *time.Time `db:"key_expiry"`
		PasswordSame bool       `db:"password_same"`
	}
	err := d.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &recs, `SELECT u.deleted_at IS NULL AS live, u.sftp_enabled, a.sftp_status, a.sftp_trial_ends_at,
			`+jailedColumn+`,
			($3::uuid IS NULL OR EXISTS (SELECT 1 FROM ssh_keys k WHERE k.account_id = u.account_id AND k.user_id = u.id AND k.id = $3::uuid
				AND k.status = 'ACTIVE' AND (k.expires_at IS NULL OR k.expires_at > $5))) AS key_live,
			(SELECT k.expires_at FROM ssh_keys k WHERE k.account_id = u.account_id AND k.id = $3::uuid) AS key_expiry,
			($4 = '' OR encode(sha256(convert_to(coalesce(u.password_hash, ''), 'UTF8')), 'hex') = $4) AS password_same,
			a.ip_allowlist AS account_allowlist, u.ip_allowlist AS user_allowlist
			FROM users u JOIN accounts a ON a.id = u.account_id
			WHERE u.account_id = $1 AND u.id = $2`, l.AccountID, l.UserID, keyID, l.PasswordDigest, now)
	})
	if err != nil {
		return Access{}, tenant.DBError(err)
	}
	if len(recs) == 0 {
		return Access{}, fmt.Errorf("%w: no such user", ErrSFTPAccessWithdrawn)
	}
	r := recs[0]
	if why := accessRefusal(r.Live, r.SFTPEnabled, r.ModuleStatus, r.TrialEndsAt, now); why != "" {
		return Access{}, fmt.Errorf("%w: %s", ErrSFTPAccessWithdrawn, why)
	}
	switch {
	case r.Jailed && !l.Jailed:
		return Access{}, fmt.Errorf("%w: the user's group now jails them", ErrSFTPAccessWithdrawn)
	case !r.Jailed && l.Jailed:
		return Access{}, fmt.Errorf("%w: the user's group no longer jails them", ErrSFTPAccessWithdrawn)
	case !r.KeyLive:
		return Access{}, fmt.Errorf("%w: the session's SSH key was deleted, disabled or has expired", ErrSFTPAccessWithdrawn)
	case !r.PasswordSame:
		return Access{}, fmt.Errorf("%w: the password the session logged in with was changed", ErrSFTPAccessWithdrawn)
	}
	if l.Remote.IsValid() {
		if why := r.allowlistRefusal(l.Remote); why != "" {
			return Access{}, fmt.Errorf("%w: %s", ErrSFTPAccessWithdrawn, why)
		}
	}
	return Access{KeyExpiresAt: r.KeyExpiry}, nil
}

// LooksLikeLoginID reports whether s has the shape of the IDs newLoginID
// issues, over any letters and digits, not only its alphabet: a custom login
// must not be mistaken for an ID, by a person or by loginQuery.
func LooksLikeLoginID(s string) bool {
	if len(s) != 9 || s[4] != '-' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; i != 4 && (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// throttledLogin is the name failed password logins are counted under. A
// login ID names one user deployment-wide, so its failures count wherever
// they happen. Any other name can only be a custom login, which means
// something only on one account's dedicated IP: counting it per destination
// keeps guesses at one account's "backup" (or at "backup" on a shared
// address) from locking out another account's "backup".
func throttledLogin(dest netip.Addr, login string) string {
	if LooksLikeLoginID(strings.ToLower(strings.TrimSpace(login))) {
		return login
	}
	return login + "@" + dest.Unmap().WithZone("").String()
}
