package sftpaccess

import (
	"bufio"
	"context"
	"crypto/rsa"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
	"golang.org/x/crypto/ssh"
)

// Bounds on what a user may paste as a public key. A 16384-bit RSA key in
// RFC 4716 form with headers stays well under maxPublicKeyText.
const (
	minRSAKeyBits     = 2048
	maxRSAKeyBits     = 16384
	maxPublicKeyText  = 16 << 10
	maxKeyCommentLen  = 200
	maxSSHKeyTitleLen = 200
)

// keyAlgoDSA names DSA keys, which are refused; x/crypto's own constant
// for the name is deprecated along with its DSA support.
const keyAlgoDSA = "ssh-dss"

// acceptedKeyBits lists the key types a user may add and, for those whose
// size is fixed by the type, that size. RSA's size is read from the key.
var acceptedKeyBits = map[string]int{
	ssh.KeyAlgoED25519:    256,
	ssh.KeyAlgoECDSA256:   256,
	ssh.KeyAlgoECDSA384:   384,
	ssh.KeyAlgoECDSA521:   521,
	ssh.KeyAlgoSKED25519:  256,
	ssh.KeyAlgoSKECDSA256: 256,
	ssh.KeyAlgoRSA:        0,
}

const generateEd25519Hint = "generate an Ed25519 key with ssh-keygen -t ed25519"

// ParsedKey is a public key a user may add, with what users are shown about it.
type ParsedKey struct {
	Key         ssh.PublicKey
	Algorithm   string // the key type, e.g. "ssh-ed25519"
	Bits        int
	Fingerprint string // "SHA256:…", as ssh-keygen -l prints it
	Comment     string
}

// ParsePublicKey parses one public key as users paste it: an OpenSSH
// authorized_keys line without options ("type base64 [comment]"), or the
// RFC 4716 "---- BEGIN SSH2 PUBLIC KEY ----" block PuTTY shows. Weak or
// unsupported keys, several keys, and private keys pasted by mistake are
// refused with an EInvalid error on field "publicKey" saying what to do.
func ParsePublicKey(text string) (*ParsedKey, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return nil, keyInvalid("paste an SSH public key: the contents of your .pub file, e.g. id_ed25519.pub")
	case strings.Contains(text, "PRIVATE KEY-----") || strings.Contains(text, "PuTTY-User-Key-File"):
		return nil, keyInvalid("this is a private key — never share it; paste the contents of the .pub file")
	case len(text) > maxPublicKeyText:
		return nil, keyInvalid("this is too long to be an SSH public key; paste the contents of the .pub file")
	case !utf8.ValidString(text):
		return nil, keyInvalid("this is not an SSH public key; paste the contents of the .pub file")
	case strings.HasPrefix(text, rfc4716Begin):
		return parseRFC4716(text)
	}
	if strings.ContainsAny(text, "\r\n") {
		return nil, keyInvalid("paste one key at a time: this text has several lines, and an SSH public key is a single line")
	}
	return parseAuthorizedKeyLine(text)
}

func keyInvalid(msg string) *tenant.Error { return tenant.Invalid("publicKey", "%s", msg) }

// parseAuthorizedKeyLine parses "type base64 [comment]". ssh.ParseAuthorizedKey
// is not used because it skips lines it cannot read and accepts options, and
// its errors are not something to show a user.
func parseAuthorizedKeyLine(line string) (*ParsedKey, error) {
	fields := strings.Fields(line)
	keyType := fields[0]
	if !isKeyTypeName(keyType) {
		for _, f := range fields[1:] {
			if isKeyTypeName(f) {
				return nil, keyInvalid("remove the text before " + shownKeyType(f) + ": options such as command= or from= do not apply to SFTP keys here")
			}
		}
		return nil, keyInvalid("this is not an SSH public key; it should start with ssh-ed25519, ecdsa-sha2-… or ssh-rsa")
	}
	if err := refuseKeyType(keyType); err != nil {
		return nil, err
	}
	if len(fields) < 2 {
		return nil, keyInvalid("the key is incomplete: the base64 part after " + keyType + " is missing")
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return nil, keyInvalid("the key is damaged (its base64 part does not decode); copy the whole line again")
	}
	pk, err := parseKeyBlob(blob)
	if err != nil {
		return nil, err
	}
	if pk.Key.Type() != keyType {
		return nil, keyInvalid("the key is damaged: the line says " + keyType + " but the key in it is " + pk.Key.Type())
	}
	pk.Comment = cleanKeyComment(strings.Join(fields[2:], " "))
	return pk, nil
}

// parseKeyBlob checks a key in SSH wire format and describes it.
func parseKeyBlob(blob []byte) (*ParsedKey, error) {
	damaged := keyInvalid("the key is damaged or not an SSH public key; copy the whole line of the .pub file again")
	name, _, ok := readSSHString(blob)
	if !ok {
		return nil, damaged
	}
	algo := string(name)
	if err := refuseKeyType(algo); err != nil {
		return nil, err
	}
	if algo == ssh.KeyAlgoRSA {
		// Read the size before ssh.ParsePublicKey, which refuses oversized
		// keys with no word on why.
		var w struct {
			Type string
			E, N *big.Int
			Rest []byte `ssh:"rest"`
		}
		if ssh.Unmarshal(blob, &w) != nil {
			return nil, damaged
		}
		if bits := w.N.BitLen(); bits < minRSAKeyBits {
			return nil, keyInvalid("this RSA key has only " + tenant.Itoa(bits) + " bits, which is too weak; use at least " +
				tenant.Itoa(minRSAKeyBits) + " bits, or better " + generateEd25519Hint)
		} else if bits > maxRSAKeyBits {
			return nil, keyInvalid("this RSA key has " + tenant.Itoa(bits) + " bits; at most " + tenant.Itoa(maxRSAKeyBits) +
				" are supported — " + generateEd25519Hint)
		}
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil || key.Type() != algo {
		return nil, damaged
	}
	bits := acceptedKeyBits[algo]
	if ck, ok := key.(ssh.CryptoPublicKey); ok {
		if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok {
			bits = rk.N.BitLen()
		}
	}
	return &ParsedKey{Key: key, Algorithm: algo, Bits: bits, Fingerprint: ssh.FingerprintSHA256(key)}, nil
}

// isKeyTypeName reports whether s names an SSH key type, accepted or not, so
// that a line starting with something else can be recognised as options.
func isKeyTypeName(s string) bool {
	if _, ok := acceptedKeyBits[s]; ok {
		return true
	}
	return s == keyAlgoDSA || strings.HasSuffix(s, "-cert-v01@openssh.com") ||
		strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-") || strings.HasPrefix(s, "sk-")
}

// refuseKeyType explains why a key type cannot be added, or returns nil.
func refuseKeyType(t string) error {
	if _, ok := acceptedKeyBits[t]; ok {
		return nil
	}
	switch {
	case t == keyAlgoDSA:
		return keyInvalid("DSA keys are no longer secure; " + generateEd25519Hint)
	case strings.HasSuffix(t, "-cert-v01@openssh.com"):
		return keyInvalid("SSH certificates are not supported; paste the plain public key (the .pub file without -cert)")
	}
	return keyInvalid("keys of type " + shownKeyType(t) + " are not supported; use Ed25519, ECDSA or RSA — " + generateEd25519Hint)
}

// shownKeyType makes a key type name from pasted text fit to echo in a message.
func shownKeyType(t string) string {
	t = cleanKeyComment(strings.ToValidUTF8(t, "?"))
	if utf8.RuneCountInString(t) > 64 {
		t = string([]rune(t)[:64]) + "…"
	}
	return t
}

// cleanKeyComment keeps a comment safe to store and show: printable text
// with single spaces, bounded.
func cleanKeyComment(c string) string {
	c = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, c)
	c = strings.Join(strings.Fields(c), " ")
	if utf8.RuneCountInString(c) > maxKeyCommentLen {
		c = strings.TrimSpace(string([]rune(c)[:maxKeyCommentLen]))
	}
	return c
}

// readSSHString reads one uint32-length-prefixed string of the SSH wire format.
func readSSHString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

const (
	rfc4716Begin = "---- BEGIN SSH2 PUBLIC KEY ----"
	rfc4716End   = "---- END SSH2 PUBLIC KEY ----"
)

// parseRFC4716 reads the SSH2 public key file format (RFC 4716 section 3):
// header lines "Tag: value" (a trailing backslash continues a line), then
// base64 lines, between BEGIN and END markers. Only the Comment header is kept.
func parseRFC4716(text string) (*ParsedKey, error) {
	damaged := keyInvalid("the SSH2 public key block is incomplete or damaged; copy it again from ---- BEGIN to ---- END")
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 1024), maxPublicKeyText)
	sc.Scan() // the BEGIN line, checked by the caller
	var comment, body strings.Builder
	inHeader, continued, ended := true, false, false
	var tag string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if ended {
			if line != "" {
				return nil, keyInvalid("paste one key at a time: there is more text after ---- END SSH2 PUBLIC KEY ----")
			}
			continue
		}
		switch {
		case line == rfc4716End:
			ended = true
			continue
		case continued:
			// The previous header line ended with a backslash: this continues it.
		case inHeader && strings.Contains(line, ":"):
			tag, line, _ = strings.Cut(line, ":")
			tag = strings.ToLower(strings.TrimSpace(tag))
			line = strings.TrimSpace(line)
		default:
			inHeader = false
			body.WriteString(line)
			continue
		}
		continued = strings.HasSuffix(line, `\`)
		if tag == "comment" {
			comment.WriteString(strings.TrimSuffix(line, `\`))
		}
	}
	if !ended || body.Len() == 0 {
		return nil, damaged
	}
	blob, err := base64.StdEncoding.DecodeString(body.String())
	if err != nil {
		return nil, damaged
	}
	pk, err := parseKeyBlob(blob)
	if err != nil {
		return nil, err
	}
	c := comment.String()
	if len(c) >= 2 && c[0] == '"' && c[len(c)-1] == '"' {
		c = c[1 : len(c)-1]
	}
	pk.Comment = cleanKeyComment(c)
	return pk, nil
}

// SSHKey is a public key a user may log in to SFTP with.
type SSHKey struct {
	ID          string     `db:"id"`
	AccountID   string     `db:"account_id"`
	UserID      string     `db:"user_id"`
	Title       string     `db:"title"`
	Algorithm   string     `db:"algorithm"`
	Bits        int        `db:"bits"`
	Fingerprint string     `db:"fingerprint"`
	Comment     string     `db:"comment"`
	CreatedAt   time.Time  `db:"created_at"`
	CreatedBy   string     `db:"created_by"` // the name of who added it, as it was then
	LastUsedAt  *time.Time `db:"last_used_at"`
	// ExpiresAt is when the key stops logging in; nil: never.
	ExpiresAt *time.Time   `db:"expires_at"`
	Status    SSHKeyStatus `db:"status"`
}

// SSHKeyStatus says whether a key may log in (before its expiry).
type SSHKeyStatus string

const (
	SSHKeyActive   SSHKeyStatus = "ACTIVE"
	SSHKeyDisabled SSHKeyStatus = "DISABLED"
)

// IsValid reports whether st is a known status.
func (st SSHKeyStatus) IsValid() bool { return st == SSHKeyActive || st == SSHKeyDisabled }

// Usable reports whether the key may log in at now: active and not expired.
func (k *SSHKey) Usable(now time.Time) bool {
	return k.Status == SSHKeyActive && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

const sshKeyColumns = `id, account_id, user_id, title, algorithm, bits, fingerprint, comment, created_at, created_by, last_used_at,
	expires_at, status`

// auditState is what the audit trail records of a key.
func (k *SSHKey) AuditState() map[string]any {
	return map[string]any{"title": k.Title, "fingerprint": k.Fingerprint, "algorithm": k.Algorithm, "bits": k.Bits, "userId": k.UserID,
		"expiresAt": k.ExpiresAt, "status": k.Status}
}

// SSHKeyOptions are what may be set about a key besides its title when it
// is added: an expiry (nil: never) and a status (empty: ACTIVE).
type SSHKeyOptions struct {
	ExpiresAt *time.Time
	Status    SSHKeyStatus
}

// validate checks the options' status, defaulting it.
func (o *SSHKeyOptions) validate() error {
	if o.Status == "" {
		o.Status = SSHKeyActive
	}
	if !o.Status.IsValid() {
		return tenant.Invalid("status", "status must be ACTIVE or DISABLED")
	}
	return nil
}

// mayManageKeysOf reports whether p may see and change userID's keys in p's
// account: owners and administrators anyone's, users their own.
func mayManageKeysOf(p *tenant.Principal, userID string) bool {
	return p.IsAdmin(p.AccountID) || p.ID == userID
}

// AddSSHKey adds a public key to a live user of the principal's account.
// Owners and administrators add keys for anyone in their account, users for
// themselves; any other user is "user not found", exactly like a missing one.
// The same key may be on several users (logins name the user, so nothing is
// ambiguous), but only once per user: a repeat is an EConflict on publicKey.
// The user gets an email about the new key, and the audit trail a record.
func (s *Service) AddSSHKey(ctx context.Context, userID, title, publicKey string) (*SSHKey, error) {
	return s.AddSSHKeyWith(ctx, userID, title, publicKey, SSHKeyOptions{})
}

// MaxSSHKeysPerUser is how many SSH keys one user may have: each is a row
// and an email, so there must be an end (AWS Transfer Family allows 50).
const MaxSSHKeysPerUser = 100

// AddSSHKeyWith is AddSSHKey with an expiry and a status set at once. An
// expiry may be in the past (the key is then added expired), as a disabled
// key may be added: neither logs in.
func (s *Service) AddSSHKeyWith(ctx context.Context, userID, title, publicKey string, opts SSHKeyOptions) (*SSHKey, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	// Every field is checked before any is refused (all user errors at once).
	title, titleErr := tenant.NormName("title", title, maxSSHKeyTitleLen)
	optsErr := opts.validate()
	parsed, keyErr := ParsePublicKey(publicKey)
	if err := errors.Join(titleErr, keyErr, optsErr); err != nil {
		return nil, err
	}
	if !mayManageKeysOf(p, userID) {
		return nil, tenant.NotFound("user")
	}
	var key SSHKey
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		// Locking the user row orders this insert against a concurrent delete.
		u, err := tenant.GetUser(ctx, q, userID, true)
		if err != nil {
			return err
		}
		if u.Deleted() {
			return tenant.NotFound("user")
		}
		if !p.MayChange(u) {
			return tenant.ErrOwnersOnly
		}
		// Counted under the user row's lock: concurrent adds cannot pass the cap.
		var n int
		if err := q.GetContext(ctx, &n, `SELECT count(*) FROM ssh_keys WHERE account_id = $1 AND user_id = $2`, u.AccountID, u.ID); err != nil {
			return tenant.DBError(err)
		}
		if n >= MaxSSHKeysPerUser {
			return &tenant.Error{Code: tenant.ELimit, Field: "publicKey",
				Message: fmt.Sprintf("a user has at most %d SSH keys; delete one they no longer use first", MaxSSHKeysPerUser)}
		}
		err = q.GetContext(ctx, &key, `INSERT INTO ssh_keys
			(account_id, user_id, title, algorithm, bits, fingerprint, comment, public_key, created_at, created_by, expires_at, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (user_id, fingerprint) DO NOTHING
			RETURNING `+sshKeyColumns,
			u.AccountID, u.ID, title, parsed.Algorithm, parsed.Bits, parsed.Fingerprint, parsed.Comment,
			parsed.Key.Marshal(), s.Time(), tenant.ActorOf(ctx).Name, opts.ExpiresAt, opts.Status)
		if errors.Is(err, sql.ErrNoRows) { // nothing inserted: the user already has this key
			return &tenant.Error{Code: tenant.EConflict, Field: "publicKey", Message: "this key is already added to this user"}
		}
		if err != nil {
			return tenant.DBError(err)
		}
		var accountName string
		if err := q.GetContext(ctx, &accountName, `SELECT name FROM accounts WHERE id = $1`, u.AccountID); err != nil {
			return tenant.DBError(err)
		}
		// The user learns of every key that can now open their files, in
		// this transaction: no email for a key that was not added.
		if err := outbox.Enqueue(ctx, q, u.AccountID, outbox.Email{To: u.Email, Data: outbox.SSHKeyAddedData{
			UserName: u.Name, AccountName: accountName, Title: key.Title, Algorithm: key.Algorithm, Bits: key.Bits,
			Fingerprint: key.Fingerprint, AddedAt: key.CreatedAt, AddedBy: key.CreatedBy,
		}}); err != nil {
			return err
		}
		return audit.Record(ctx, q, key.AccountID, audit.Event{Kind: "ssh_key.added", TargetKind: "SshKey", TargetID: key.ID, After: key.AuditState()})
	})
	if err != nil {
		return nil, err
	}
	return &key, nil
}

// RenameSSHKey changes a key's title. Permissions as for UpdateSSHKey.
func (s *Service) RenameSSHKey(ctx context.Context, keyID, title string) (*SSHKey, error) {
	return s.UpdateSSHKey(ctx, keyID, SSHKeyUpdate{Title: &title})
}

// SSHKeyUpdate is what UpdateSSHKey changes: each field that is set (nil
// fields stay as they are). The key itself never changes.
type SSHKeyUpdate struct {
	Title *string
	// SetExpiresAt says to set ExpiresAt, where nil means "never expires".
	SetExpiresAt bool
	ExpiresAt    *time.Time
	Status       *SSHKeyStatus
}

// UpdateSSHKey changes a key's title, expiry and status. Permissions as for
// AddSSHKey: a key the principal may not manage is "SSH key not found",
// exactly like a missing one, and only an owner changes an owner's keys.
// A key that stops being usable (disabled, or given an expiry that has
// passed) ends the sessions that logged in with it, as DeleteSSHKey does.
// Changing the expiry re-arms its reminder emails.
func (s *Service) UpdateSSHKey(ctx context.Context, keyID string, up SSHKeyUpdate) (*SSHKey, error) {
	var title string
	var titleErr, statusErr error
	if up.Title != nil {
		title, titleErr = tenant.NormName("title", *up.Title, maxSSHKeyTitleLen)
	}
	if up.Status != nil && !up.Status.IsValid() {
		statusErr = tenant.Invalid("status", "status must be ACTIVE or DISABLED")
	}
	if err := errors.Join(titleErr, statusErr); err != nil {
		return nil, err
	}
	now := s.Time()
	wasUsable := false
	key, err := s.changeSSHKey(ctx, keyID, true, func(q tenant.Queryer, key *SSHKey) error {
		wasUsable = key.Usable(now)
		before := key.AuditState()
		next := *key
		if up.Title != nil {
			next.Title = title
		}
		if up.Status != nil {
			next.Status = *up.Status
		}
		expiryChanged := up.SetExpiresAt && !sameTime(key.ExpiresAt, up.ExpiresAt)
		if expiryChanged {
			next.ExpiresAt = up.ExpiresAt
		}
		if next.Title == key.Title && next.Status == key.Status && !expiryChanged {
			return nil
		}
		if err := q.GetContext(ctx, key, `UPDATE ssh_keys SET title = $3, status = $4, expires_at = $5,
				expiry_warned_at = CASE WHEN $6 THEN NULL ELSE expiry_warned_at END,
				expired_notified_at = CASE WHEN $6 THEN NULL ELSE expired_notified_at END
			WHERE account_id = $1 AND id = $2 RETURNING `+sshKeyColumns,
			key.AccountID, key.ID, next.Title, next.Status, next.ExpiresAt, expiryChanged); err != nil {
			return tenant.DBError(err)
		}
		kind := "ssh_key.updated"
		if !up.SetExpiresAt && up.Status == nil {
			kind = "ssh_key.renamed"
		}
		return audit.Record(ctx, q, key.AccountID, audit.Event{Kind: kind, TargetKind: "SshKey", TargetID: key.ID, Before: before, After: key.AuditState()})
	})
	if err == nil && wasUsable && !key.Usable(now) {
		s.EndCredentialSessions(key.AccountID, key.UserID, key.ID)
	}
	return key, err
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// DeleteSSHKey removes a key and returns it as it was; the key stops working
// for new logins at once, and the SFTP sessions that logged in with it end:
// on this node at once, on others as soon as they hear of it (see
// tenant.Base.Sessions). Permissions as for RenameSSHKey.
func (s *Service) DeleteSSHKey(ctx context.Context, keyID string) (*SSHKey, error) {
	key, err := s.changeSSHKey(ctx, keyID, true, func(q tenant.Queryer, key *SSHKey) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM ssh_keys WHERE account_id = $1 AND id = $2`, key.AccountID, key.ID); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, key.AccountID, audit.Event{Kind: "ssh_key.deleted", TargetKind: "SshKey", TargetID: key.ID, Before: key.AuditState()})
	})
	if err == nil {
		s.EndCredentialSessions(key.AccountID, key.UserID, key.ID)
	}
	return key, err
}

// SSHKey returns one key the principal may manage (see AddSSHKey); any
// other is "SSH key not found".
func (s *Service) SSHKey(ctx context.Context, keyID string) (*SSHKey, error) {
	return s.changeSSHKey(ctx, keyID, false, func(tenant.Queryer, *SSHKey) error { return nil })
}

// changeSSHKey runs change on a key the principal may manage, in one
// transaction with the key row locked, and returns the key as change left it.
// When write is set, only an owner changes an owner's keys (ErrOwnersOnly).
func (s *Service) changeSSHKey(ctx context.Context, keyID string, write bool, change func(q tenant.Queryer, key *SSHKey) error) (*SSHKey, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	var key *SSHKey
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		if key, err = getManagedSSHKey(ctx, q, p, keyID); err != nil {
			return err
		}
		if write && key.UserID != p.ID {
			u, err := tenant.GetUser(ctx, q, key.UserID, false)
			if err != nil {
				return err
			}
			if !p.MayChange(u) {
				return tenant.ErrOwnersOnly
			}
		}
		return change(q, key)
	})
	if err != nil {
		return nil, err
	}
	return key, nil
}

// getManagedSSHKey locks and returns a key of p's account that p may manage.
func getManagedSSHKey(ctx context.Context, q tenant.Queryer, p *tenant.Principal, keyID string) (*SSHKey, error) {
	if !tenant.IsUUID(keyID) {
		return nil, tenant.NotFound("SSH key")
	}
	var key SSHKey
	if err := q.GetContext(ctx, &key, `SELECT `+sshKeyColumns+` FROM ssh_keys WHERE account_id = $1 AND id = $2 FOR UPDATE`,
		p.AccountID, keyID); err != nil {
		return nil, tenant.NotFoundAs(tenant.DBError(err), "SSH key")
	}
	if !mayManageKeysOf(p, key.UserID) {
		return nil, tenant.NotFound("SSH key")
	}
	return &key, nil
}

// SSHKeys lists a user's keys, oldest first. Owners and administrators list
// anyone's in their account (deleted users' too), users their own; any other
// user is "user not found".
func (s *Service) SSHKeys(ctx context.Context, userID string) ([]*SSHKey, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if !mayManageKeysOf(p, userID) || !tenant.IsUUID(userID) {
		return nil, tenant.NotFound("user")
	}
	keys := []*SSHKey{}
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		if _, err := tenant.GetUser(ctx, q, userID, false); err != nil {
			return err
		}
		return tenant.DBError(q.SelectContext(ctx, &keys, `SELECT `+sshKeyColumns+` FROM ssh_keys
			WHERE account_id = $1 AND user_id = $2 ORDER BY created_at, id`, p.AccountID, userID))
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// SSHKeysForUsers loads the keys of several users of accountID in one query,
// for dataloaders: each user's keys oldest first. Support staff see any
// account's keys (public keys: a support screen shows them). Users whose keys
// the principal may not see, and IDs that match no user, are absent from the
// map.
func (s *Service) SSHKeysForUsers(ctx context.Context, accountID string, userIDs []string) (map[string][]*SSHKey, error) {
	out := make(map[string][]*SSHKey, len(userIDs))
	p := tenant.PrincipalFrom(ctx)
	if !p.InAccount(accountID) && !p.IsStaff() {
		return out, nil
	}
	visible := make([]string, 0, len(userIDs))
	for _, id := range userIDs {
		if p.IsStaff() || mayManageKeysOf(p, id) { // support reads any account's keys
			visible = append(visible, id)
		}
	}
	if len(visible) == 0 {
		return out, nil
	}
	err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var keys []*SSHKey
		if err := q.SelectContext(ctx, &keys, `SELECT `+sshKeyColumns+` FROM ssh_keys
			WHERE account_id = $1 AND user_id = ANY($2::uuid[]) ORDER BY created_at, id`, accountID, tenant.UUIDArray(visible)); err != nil {
			return tenant.DBError(err)
		}
		for _, k := range keys {
			out[k.UserID] = append(out[k.UserID], k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sshKeyExpiryLead is how long before a key expires its owner is warned.
const sshKeyExpiryLead = 7 * 24 * time.Hour

// SendSSHKeyExpiryReminders emails the owner of every active SSH key that
// expires within sshKeyExpiryLead ("expires on …"), and of every active key
// that has expired ("has expired"), each email once per expiry date: the
// claim is recorded on the key in the email's transaction, so nodes running
// this at once send it once. Changing a key's expiry re-arms both (see
// UpdateSSHKey). Sessions of an expired key on this node end here; every
// node's session gate also ends them at its next check. It returns how many
// emails were queued. Only the system (the background job) or support staff.
func (s *Service) SendSSHKeyExpiryReminders(ctx context.Context) (int, error) {
	if p := tenant.PrincipalFrom(ctx); !tenant.IsSystem(p) && !p.IsStaff() {
		return 0, tenant.Errorf(tenant.EForbidden, "only the system or support staff can send SSH key reminders")
	}
	now := s.Time()
	// $1 now, $2 now + the lead. A key added already expired gets no email.
	const due = `status = 'ACTIVE' AND expires_at IS NOT NULL AND expires_at > created_at AND (
		(expires_at <= $1 AND expired_notified_at IS NULL) OR
		(expires_at > $1 AND expires_at <= $2 AND expiry_warned_at IS NULL))`
	var due0 []struct {
		AccountID string `db:"account_id"`
		ID        string `db:"id"`
	}
	// The scan crosses tenants: the directory scope is the one that reads
	// every account's keys (as logins do); each email then runs in its tenant.
	if err := s.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) error {
		return tenant.DBError(tx.SelectContext(ctx, &due0, `SELECT account_id, id FROM ssh_keys WHERE `+due+` ORDER BY expires_at, id`,
			now, now.Add(sshKeyExpiryLead)))
	}); err != nil {
		return 0, err
	}
	sent := 0
	var errs []error
	for _, k := range due0 {
		var claimed *SSHKey
		err := s.InAccount(ctx, k.AccountID, func(q tenant.Queryer) error {
			var keys []*SSHKey
			// Re-checking the condition in the UPDATE makes the claim atomic.
			if err := q.SelectContext(ctx, &keys, `UPDATE ssh_keys SET
					expired_notified_at = CASE WHEN expires_at <= $1 THEN $1 ELSE expired_notified_at END,
					expiry_warned_at = coalesce(expiry_warned_at, $1)
				WHERE account_id = $3 AND id = $4 AND `+due+` RETURNING `+sshKeyColumns,
				now, now.Add(sshKeyExpiryLead), k.AccountID, k.ID); err != nil {
				return tenant.DBError(err)
			}
			if len(keys) == 0 {
				return nil // another node sent it, or the key changed meanwhile
			}
			key := keys[0]
			var to struct {
				Name        string `db:"name"`
				Email       string `db:"email"`
				AccountName string `db:"account_name"`
			}
			if err := q.GetContext(ctx, &to, `SELECT u.name, u.email, a.name AS account_name FROM users u JOIN accounts a ON a.id = u.account_id
				WHERE u.account_id = $1 AND u.id = $2 AND u.deleted_at IS NULL`, key.AccountID, key.UserID); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return nil // a deleted user's key: claimed, nobody to tell
				}
				return tenant.DBError(err)
			}
			claimed = key
			return outbox.Enqueue(ctx, q, key.AccountID, outbox.Email{To: to.Email, Data: outbox.SSHKeyExpiryData{
				UserName: to.Name, AccountName: to.AccountName, Title: key.Title, Fingerprint: key.Fingerprint,
				ExpiresAt: *key.ExpiresAt, Expired: !now.Before(*key.ExpiresAt),
			}})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("SSH key expiry reminder for key %s: %w", k.ID, err))
			continue
		}
		if claimed != nil {
			sent++
			if !claimed.Usable(now) {
				s.EndCredentialSessions(claimed.AccountID, claimed.UserID, claimed.ID)
			}
		}
	}
	return sent, errors.Join(errs...)
}
