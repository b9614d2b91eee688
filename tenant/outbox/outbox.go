package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
)

// EmailKind names the template an outbox email is rendered with.
type EmailKind string

const (
	EmailSFTPEnabled        EmailKind = "sftp_enabled"
	EmailSSHKeyAdded        EmailKind = "ssh_key_added"
	EmailModuleTrialStarted EmailKind = "module_trial_started"
	EmailModuleActivated    EmailKind = "module_activated"
	EmailModuleTrialEnding  EmailKind = "module_trial_ending"
	EmailInvitation         EmailKind = "invitation"
	EmailPasswordReset      EmailKind = "password_reset"
	EmailEmailChanged       EmailKind = "email_changed"
	// The two kinds support's staff-scope transactions may enqueue
	// (migration 00025's outbox policy names them).
	EmailDedicatedIPProvisioned EmailKind = "dedicated_ip_provisioned"
	EmailDedicatedIPDeclined    EmailKind = "dedicated_ip_declined"
	// The two reminders of an SSH key's expiry, to the key's owner.
	EmailSSHKeyExpiring EmailKind = "ssh_key_expiring"
	EmailSSHKeyExpired  EmailKind = "ssh_key_expired"
	// To the account's owners when its storage reaches 80 % or 100 % of its quota.
	EmailStorageQuota EmailKind = "storage_quota"
	// To a member of a project folder who asked for it: what was uploaded
	// to the folder since the last digest (package activity).
	EmailFolderUploadDigest EmailKind = "folder_upload_digest"
)

// EmailKinds lists every kind, for template checks.
func EmailKinds() []EmailKind {
	return []EmailKind{EmailSFTPEnabled, EmailSSHKeyAdded, EmailModuleTrialStarted,
		EmailModuleActivated, EmailModuleTrialEnding, EmailInvitation, EmailPasswordReset,
		EmailDedicatedIPProvisioned, EmailDedicatedIPDeclined, EmailEmailChanged,
		EmailSSHKeyExpiring, EmailSSHKeyExpired, EmailStorageQuota, EmailFolderUploadDigest}
}

// EmailStatus is where an outbox email is on its way out.
type EmailStatus string

const (
	EmailPending EmailStatus = "PENDING" // waiting for its first or next attempt
	EmailSending EmailStatus = "SENDING" // a worker is talking to the mail server
	EmailSent    EmailStatus = "SENT"    // the mail server accepted it
	EmailFailed  EmailStatus = "FAILED"  // given up; LastError says why
)

// EmailData is the content of one kind of email: one of the *Data types
// below. Its fields, by their Go names, are what the templates use.
type EmailData interface {
	EmailKind() EmailKind
	validate() error
}

// Email is one message to enqueue.
type Email struct {
	To   string // the recipient's address
	Data EmailData
}

// HostKeyFingerprint is one of the SFTP server's host keys, as users check it
// on first connection.
type HostKeyFingerprint struct {
	Algorithm   string // e.g. "ssh-ed25519"
	Fingerprint string // "SHA256:..."
}

// SFTPEnabledData tells a user how to connect once SFTP is turned on for them.
// It never carries a password: users log in with their account password or a key.
type SFTPEnabledData struct {
	UserName    string
	AccountName string
	Host        string // public SFTP host name
	Port        int
	Login       string // the lasting login ID
	// CustomLogin is the user's custom login, usable only on DedicatedHost;
	// both empty when the account has no dedicated IP or the user no custom login.
	CustomLogin   string
	DedicatedHost string
	// HostKeys lets users check the server on first connection. Empty only
	// before the SFTP server has made its keys; the email then says so
	// rather than the change failing.
	HostKeys []HostKeyFingerprint
	// Jailed is set when the user's group jails them: they start in (and see
	// only) /Projects Shared With Me/.
	Jailed bool
}

// SSHKeyAddedData tells a user that a key now opens their SFTP access.
type SSHKeyAddedData struct {
	UserName    string
	AccountName string
	Title       string
	Algorithm   string
	Bits        int
	Fingerprint string
	AddedAt     time.Time
	AddedBy     string // who added it, as the audit trail names them
}

// EmailChangedData goes to a user's old address when their login email
// changes: a stolen session cannot move the account away unnoticed.
type EmailChangedData struct {
	UserName    string
	AccountName string
	OldEmail    string
	NewEmail    string
	ChangedAt   time.Time
	ChangedBy   string // who changed it, as the audit trail names them
}

// SSHKeyExpiryData tells a user that one of their SSH keys expires soon
// (Expired false: 7 days before) or has expired and no longer logs in.
type SSHKeyExpiryData struct {
	UserName    string
	AccountName string
	Title       string
	Fingerprint string
	ExpiresAt   time.Time
	Expired     bool `json:"-"` // chooses the kind; the templates know it by their kind
}

// OwnerSFTP is what a module email tells the owner who started the module
// (who started the trial, or asked for the activation) of their own SFTP
// access, turned on with the module in the same transaction.
type OwnerSFTP struct {
	// OwnSFTP is their access and how to connect, as the sftp_enabled email
	// has it; nil in the other owners' emails, and when no licence was free.
	OwnSFTP *SFTPEnabledData
	// NoLicenceForOwner is set when no licence was free for them.
	NoLicenceForOwner bool
}

// ModuleTrialStartedData goes to the account owner when the SFTP trial starts.
type ModuleTrialStartedData struct {
	OwnerName   string
	AccountName string
	StartedAt   time.Time
	EndsAt      time.Time
	Licences    int
	OwnerSFTP
}

// ModuleActivatedData goes to the account owner when support activates the module.
type ModuleActivatedData struct {
	OwnerName   string
	AccountName string
	ActivatedAt time.Time
	Licences    int
	OwnerSFTP
}

// ModuleTrialEndingData goes to the account owner three days before the trial ends.
type ModuleTrialEndingData struct {
	OwnerName    string
	AccountName  string
	EndsAt       time.Time
	Licences     int
	LicencesUsed int
}

// InvitationData invites someone to an account. Token is the one-time secret
// the link carries; the notify package builds the link. The outbox forgets the
// token once the email is sent or given up.
type InvitationData struct {
	InviteeName string
	AccountName string
	InvitedBy   string
	Token       string
	ExpiresAt   time.Time
}

// PasswordResetData carries a one-time password-reset token; as for
// InvitationData, the outbox forgets it once the email is sent or given up.
type PasswordResetData struct {
	UserName  string
	Token     string
	ExpiresAt time.Time
}

// DedicatedIPProvisionedData tells the owner who requested a dedicated IP
// that support provisioned it.
type DedicatedIPProvisionedData struct {
	UserName      string
	AccountName   string
	RequestedAt   time.Time
	Address       string
	ProvisionedAt time.Time
	// HostKeys are the account's own host keys, presented on Address.
	HostKeys []HostKeyFingerprint
}

// DedicatedIPDeclinedData tells the owner who requested a dedicated IP that
// support declined the request, and why.
type DedicatedIPDeclinedData struct {
	UserName    string
	AccountName string
	RequestedAt time.Time
	Reason      string
}

func (DedicatedIPProvisionedData) EmailKind() EmailKind { return EmailDedicatedIPProvisioned }
func (DedicatedIPDeclinedData) EmailKind() EmailKind    { return EmailDedicatedIPDeclined }

func (SFTPEnabledData) EmailKind() EmailKind { return EmailSFTPEnabled }
func (SSHKeyAddedData) EmailKind() EmailKind { return EmailSSHKeyAdded }

// EmailKind is EmailSSHKeyExpired once the key has expired, else EmailSSHKeyExpiring.
func (d SSHKeyExpiryData) EmailKind() EmailKind {
	if d.Expired {
		return EmailSSHKeyExpired
	}
	return EmailSSHKeyExpiring
}
func (ModuleTrialStartedData) EmailKind() EmailKind { return EmailModuleTrialStarted }
func (ModuleActivatedData) EmailKind() EmailKind    { return EmailModuleActivated }
func (ModuleTrialEndingData) EmailKind() EmailKind  { return EmailModuleTrialEnding }
func (InvitationData) EmailKind() EmailKind         { return EmailInvitation }
func (PasswordResetData) EmailKind() EmailKind      { return EmailPasswordReset }
func (EmailChangedData) EmailKind() EmailKind       { return EmailEmailChanged }

// StorageQuotaData tells an owner that the account's storage reached
// Percent (80 or 100) of its quota. Used and Quota are shown as written
// ("8.0 GiB"): the templates print them, they do no arithmetic.
type StorageQuotaData struct {
	OwnerName   string
	AccountName string
	Percent     int
	Full        bool // Percent is 100
	Used        string
	Quota       string
}

func (StorageQuotaData) EmailKind() EmailKind { return EmailStorageQuota }

func (d StorageQuotaData) validate() error {
	r := (&required{kind: d.EmailKind()}).text("OwnerName", d.OwnerName).text("AccountName", d.AccountName).
		text("Used", d.Used).text("Quota", d.Quota)
	if r.err == nil && (d.Percent != 80 && d.Percent != 100 || d.Full != (d.Percent == 100)) {
		r.err = fmt.Errorf("email %s: Percent is %d, not 80 or 100", d.EmailKind(), d.Percent)
	}
	return r.err
}

// FolderUploadDigestData lists the uploads to a project folder over one
// digest interval, for one member of the folder. Sizes are shown as written
// ("1.2 MiB"); Uploads holds at most the first MaxDigestUploads, More counts
// the others.
type FolderUploadDigestData struct {
	UserName    string
	AccountName string
	FolderName  string
	Since       time.Time
	Until       time.Time
	Count       int
	Uploads     []DigestUpload
	More        int
}

// DigestUpload is one completed upload in a folder digest.
type DigestUpload struct {
	At   time.Time
	By   string // the uploader's name (their login when they have none)
	Path string // inside the folder
	Size string
}

// MaxDigestUploads is the most uploads one digest lists.
const MaxDigestUploads = 200

func (FolderUploadDigestData) EmailKind() EmailKind { return EmailFolderUploadDigest }

func (d FolderUploadDigestData) validate() error {
	r := (&required{kind: d.EmailKind()}).text("UserName", d.UserName).text("AccountName", d.AccountName).
		text("FolderName", d.FolderName).at("Since", d.Since).at("Until", d.Until)
	if r.err == nil && (len(d.Uploads) == 0 || len(d.Uploads) > MaxDigestUploads || d.Count != len(d.Uploads)+d.More) {
		r.err = fmt.Errorf("email %s: %d uploads listed, %d more, count %d", d.EmailKind(), len(d.Uploads), d.More, d.Count)
	}
	return r.err
}

// required collects the first missing field of an EmailData.
type required struct {
	kind EmailKind
	err  error
}

func (r *required) text(name, v string) *required {
	if r.err == nil && strings.TrimSpace(v) == "" {
		r.err = fmt.Errorf("email %s: %s is required", r.kind, name)
	}
	return r
}

func (r *required) at(name string, v time.Time) *required {
	if r.err == nil && v.IsZero() {
		r.err = fmt.Errorf("email %s: %s is required", r.kind, name)
	}
	return r
}

func (d SFTPEnabledData) validate() error {
	r := (&required{kind: d.EmailKind()}).text("UserName", d.UserName).text("AccountName", d.AccountName).
		text("Host", d.Host).text("Login", d.Login)
	switch {
	case r.err != nil:
	case d.Port < 1 || d.Port > 65535:
		r.err = fmt.Errorf("email %s: Port %d is out of range", d.EmailKind(), d.Port)
	case d.CustomLogin != "" && d.DedicatedHost == "":
		r.err = fmt.Errorf("email %s: a CustomLogin needs its DedicatedHost", d.EmailKind())
	}
	for _, k := range d.HostKeys {
		r.text("HostKeys.Algorithm", k.Algorithm).text("HostKeys.Fingerprint", k.Fingerprint)
	}
	return r.err
}

func (d SSHKeyAddedData) validate() error {
	return (&required{kind: d.EmailKind()}).text("UserName", d.UserName).text("AccountName", d.AccountName).
		text("Title", d.Title).text("Algorithm", d.Algorithm).text("Fingerprint", d.Fingerprint).
		text("AddedBy", d.AddedBy).at("AddedAt", d.AddedAt).err
}

func (d EmailChangedData) validate() error {
	return (&required{kind: d.EmailKind()}).text("UserName", d.UserName).text("AccountName", d.AccountName).
		text("OldEmail", d.OldEmail).text("NewEmail", d.NewEmail).text("ChangedBy", d.ChangedBy).at("ChangedAt", d.ChangedAt).err
}

func (d SSHKeyExpiryData) validate() error {
	return (&required{kind: d.EmailKind()}).text("UserName", d.UserName).text("AccountName", d.AccountName).
		text("Title", d.Title).text("Fingerprint", d.Fingerprint).at("ExpiresAt", d.ExpiresAt).err
}

func (d ModuleTrialStartedData) validate() error {
	return (&required{kind: d.EmailKind()}).text("OwnerName", d.OwnerName).text("AccountName", d.AccountName).
		at("StartedAt", d.StartedAt).at("EndsAt", d.EndsAt).err
}

func (d ModuleActivatedData) validate() error {
	return (&required{kind: d.EmailKind()}).text("OwnerName", d.OwnerName).text("AccountName", d.AccountName).
		at("ActivatedAt", d.ActivatedAt).err
}

func (d ModuleTrialEndingData) validate() error {
	return (&required{kind: d.EmailKind()}).text("OwnerName", d.OwnerName).text("AccountName", d.AccountName).
		at("EndsAt", d.EndsAt).err
}

func (d InvitationData) validate() error {
	return (&required{kind: d.EmailKind()}).text("InviteeName", d.InviteeName).text("AccountName", d.AccountName).
		text("InvitedBy", d.InvitedBy).text("Token", d.Token).at("ExpiresAt", d.ExpiresAt).err
}

func (d PasswordResetData) validate() error {
	return (&required{kind: d.EmailKind()}).text("UserName", d.UserName).text("Token", d.Token).
		at("ExpiresAt", d.ExpiresAt).err
}

func (d DedicatedIPProvisionedData) validate() error {
	r := (&required{kind: d.EmailKind()}).text("UserName", d.UserName).text("AccountName", d.AccountName).
		at("RequestedAt", d.RequestedAt).text("Address", d.Address).at("ProvisionedAt", d.ProvisionedAt)
	for _, k := range d.HostKeys {
		r.text("HostKeys.Algorithm", k.Algorithm).text("HostKeys.Fingerprint", k.Fingerprint)
	}
	return r.err
}

func (d DedicatedIPDeclinedData) validate() error {
	return (&required{kind: d.EmailKind()}).text("UserName", d.UserName).text("AccountName", d.AccountName).
		at("RequestedAt", d.RequestedAt).text("Reason", d.Reason).err
}

// Enqueue writes e to accountID's outbox inside the caller's transaction: the
// email goes out if and only if that transaction commits. Incomplete data or a
// bad recipient is a programming error and comes back as EInternal, so it fails
// the change loudly rather than losing the email later.
func Enqueue(ctx context.Context, q tenant.Queryer, accountID string, e Email) error {
	bug := func(err error) error {
		return &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
	}
	if e.Data == nil {
		return bug(errors.New("enqueue email: no data"))
	}
	kind := e.Data.EmailKind()
	if err := e.Data.validate(); err != nil {
		return bug(err)
	}
	to, err := tenant.EmailSyntax("to", e.To)
	if err != nil {
		return bug(fmt.Errorf("enqueue email %s: %w", kind, err))
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return bug(fmt.Errorf("enqueue email %s: encode data: %w", kind, err))
	}
	// clock_timestamp, not the transaction's start: the emails of one
	// change go out in the order it wrote them (ClaimEmail).
	_, err = q.ExecContext(ctx, `INSERT INTO outbox (account_id, kind, recipient, data, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp())`,
		accountID, string(kind), to, string(data))
	return tenant.DBError(err)
}

// Notification is one email in an account's history, as admins see it.
type Notification struct {
	ID        string
	Kind      EmailKind
	Recipient string
	Subject   string // empty until the email has been rendered for sending
	Status    EmailStatus
	Attempts  int
	LastError string // safe to show; empty when there was none
	CreatedAt time.Time
	SentAt    *time.Time
}

type notificationRow struct {
	ID        string         `db:"id"`
	Kind      string         `db:"kind"`
	Recipient string         `db:"recipient"`
	Subject   string         `db:"subject"`
	Status    string         `db:"status"`
	Attempts  int            `db:"attempts"`
	LastError sql.NullString `db:"last_error"`
	CreatedAt time.Time      `db:"created_at"`
	SentAt    *time.Time     `db:"sent_at"`
}

// ListNotifications returns a page of accountID's emails in order (newest
// first by default). The caller has checked who may see them
// (Service.Notifications does).
func ListNotifications(ctx context.Context, q tenant.Queryer, accountID string, order tenant.Order, page tenant.Page) (*tenant.Connection[*Notification], error) {
	ks, err := notificationSorts.NewKeyset(order, page)
	if err != nil {
		return nil, err
	}
	rows, err := tenant.ListPage(ctx, q, ks, tenant.ListQuery{
		Select: `SELECT ` + notificationColumns,
		From:   `FROM outbox WHERE account_id = $1`,
		Args:   []any{accountID},
	})
	if err != nil {
		return nil, err
	}
	return tenant.MapConnection(rows, func(r *notificationRow) *Notification { return r.notification() }), nil
}

// notificationSorts are the orders of ListNotifications: CREATED_AT, newest
// first by default, ties by ID.
var notificationSorts = &tenant.Sorts[*notificationRow]{
	List: "notifications",
	Keys: []tenant.SortKey[*notificationRow]{
		{Field: "CREATED_AT", Expr: "created_at", Type: "timestamptz", Of: func(r *notificationRow) string { return tenant.TimeKey(r.CreatedAt) }},
	},
	Default: tenant.Order{Field: "CREATED_AT", Desc: true},
	ID:      "id",
	IDOf:    func(r *notificationRow) string { return r.ID },
}

// Notifications lists the emails sent about accountID, newest first. Owners
// and administrators of the account and support staff may see them; another
// user of the account is FORBIDDEN, anyone else gets "account not found".
func (s *Service) Notifications(ctx context.Context, accountID string, order tenant.Order, page tenant.Page) (*tenant.Connection[*Notification], error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil {
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	var conn *tenant.Connection[*Notification]
	list := func(tx *sqlx.Tx) (err error) {
		conn, err = ListNotifications(ctx, tx, accountID, order, page)
		return err
	}
	switch {
	case p.IsStaff():
		if !tenant.IsUUID(accountID) {
			return nil, tenant.NotFound("account")
		}
		return conn, s.DB.CrossTenant(ctx, tenant.ScopeStaff, list)
	case p.IsAdmin(accountID):
		return conn, s.DB.InAccount(ctx, accountID, list)
	case p.InAccount(accountID):
		return nil, tenant.Errorf(tenant.EForbidden, "only owners and administrators can see the account's emails")
	default:
		return nil, tenant.NotFound("account")
	}
}

// The worker's side of the outbox. Each function runs in its own short
// transaction on the outbox scope, so a claim is committed before the SMTP
// conversation starts and the outcome right after it ends.

// OutboxEmail is an email a worker has claimed.
type OutboxEmail struct {
	ID        string    `db:"id"`
	AccountID string    `db:"account_id"`
	Kind      EmailKind `db:"kind"`
	To        string    `db:"recipient"`
	Data      []byte    `db:"data"`     // the EmailData as JSON
	Attempts  int       `db:"attempts"` // including the one this claim is for
	CreatedAt time.Time `db:"created_at"`
	// Unfinished is true when an earlier claim's lease ran out: a worker died
	// or lost the database while sending, so the mail server may or may not
	// have accepted that attempt.
	Unfinished bool `db:"unfinished"`
	// DueAt is when the email was due before the claim: its place in the
	// queue, which DeferEmail gives back.
	DueAt time.Time `db:"due_at"`
}

// ErrClaimLost is what MarkEmailSent and MarkEmailFailed return when the
// email is no longer this claim's: its lease ran out and another worker took it.
var ErrClaimLost = errors.New("outbox: the claim's lease ran out and another worker took the email over")

// ClaimEmail takes the most overdue email that is PENDING and due at now, or
// SENDING with an expired lease, marks it SENDING with a lease until
// now+lease and counts the attempt. It returns nil when nothing is due.
// Emails due at the same time go in the order they were written.
// Concurrent workers skip each other's locked rows, so each email is claimed once.
func ClaimEmail(ctx context.Context, q tenant.Queryer, now time.Time, lease time.Duration) (*OutboxEmail, error) {
	var e OutboxEmail
	err := q.GetContext(ctx, &e, `WITH due AS (
			SELECT id, status = 'SENDING' AS unfinished, next_attempt_at AS due_at FROM outbox
			WHERE status IN ('PENDING', 'SENDING') AND next_attempt_at <= $1
			ORDER BY next_attempt_at, created_at LIMIT 1
			FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET status = 'SENDING', attempts = o.attempts + 1, next_attempt_at = $2
		FROM due WHERE o.id = due.id
		RETURNING o.id, o.account_id, o.kind, o.recipient, o.data, o.attempts, o.created_at, due.unfinished, due.due_at`,
		now, now.Add(lease))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, tenant.DBError(err)
	}
	return &e, nil
}

// MaxErrorLen bounds last_error (the column allows 1000 characters).
const MaxErrorLen = 1000

// MarkEmailSent records that the mail server accepted e. One-time tokens in
// the data are dropped: they were only kept to build the message.
func MarkEmailSent(ctx context.Context, q tenant.Queryer, e *OutboxEmail, at time.Time, subject, messageID string) error {
	res, err := q.ExecContext(ctx, `UPDATE outbox
		SET status = 'SENT', sent_at = $3, subject = $4, message_id = $5, last_error = NULL, data = data - 'Token'
		WHERE id = $1 AND status = 'SENDING' AND attempts = $2`,
		e.ID, e.Attempts, at, subject, messageID)
	return claimed(res, err)
}

// MarkEmailFailed records a failed attempt at e with a user-safe reason. With
// a non-zero retryAt the email goes back to PENDING until then; with a zero
// one it is FAILED for good and its one-time tokens are dropped.
func MarkEmailFailed(ctx context.Context, q tenant.Queryer, e *OutboxEmail, reason string, retryAt time.Time, subject, messageID string) error {
	reason = truncateRunes(reason, MaxErrorLen)
	var res sql.Result
	var err error
	if retryAt.IsZero() {
		res, err = q.ExecContext(ctx, `UPDATE outbox
			SET status = 'FAILED', last_error = $3, subject = $4, message_id = nullif($5, ''), data = data - 'Token'
			WHERE id = $1 AND status = 'SENDING' AND attempts = $2`,
			e.ID, e.Attempts, reason, subject, messageID)
	} else {
		res, err = q.ExecContext(ctx, `UPDATE outbox
			SET status = 'PENDING', last_error = $3, subject = $4, message_id = nullif($5, ''), next_attempt_at = $6
			WHERE id = $1 AND status = 'SENDING' AND attempts = $2`,
			e.ID, e.Attempts, reason, subject, messageID, retryAt)
	}
	return claimed(res, err)
}

// DeferEmail gives e back to the queue in the place it had, without
// counting the attempt: the mail system was unavailable, which says nothing
// about this email, so an outage of any length neither uses up its
// attempts nor lets later emails overtake it. reason is shown as the last
// error until it is sent.
func DeferEmail(ctx context.Context, q tenant.Queryer, e *OutboxEmail, reason string) error {
	res, err := q.ExecContext(ctx, `UPDATE outbox
		SET status = 'PENDING', attempts = attempts - 1, last_error = $3, next_attempt_at = $4
		WHERE id = $1 AND status = 'SENDING' AND attempts = $2`,
		e.ID, e.Attempts, truncateRunes(reason, MaxErrorLen), e.DueAt)
	return claimed(res, err)
}

// PurgeEmails deletes up to limit emails created before before whose
// delivery is over (SENT or FAILED), oldest first, and returns how many it
// deleted. Emails still PENDING or SENDING are never deleted, however old
// (the outbox scope's delete policy does not let it either).
func PurgeEmails(ctx context.Context, q tenant.Queryer, before time.Time, limit int) (int, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM outbox WHERE id IN (
			SELECT id FROM outbox WHERE status IN ('SENT', 'FAILED') AND created_at < $1
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, limit)
	if err != nil {
		return 0, tenant.DBError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, tenant.DBError(err)
	}
	return int(n), nil
}

// claimed turns an update of a claimed row into ErrClaimLost when it matched nothing.
func claimed(res sql.Result, err error) error {
	if err != nil {
		return tenant.DBError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return tenant.DBError(err)
	}
	if n == 0 {
		return ErrClaimLost
	}
	return nil
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// notificationColumns are a notificationRow's columns.
const notificationColumns = `id, kind, recipient, subject, status, attempts, last_error, created_at, sent_at`

func (r notificationRow) notification() *Notification {
	return &Notification{
		ID: r.ID, Kind: EmailKind(r.Kind), Recipient: r.Recipient, Subject: r.Subject,
		Status: EmailStatus(r.Status), Attempts: r.Attempts, LastError: r.LastError.String,
		CreatedAt: r.CreatedAt, SentAt: r.SentAt,
	}
}

// Notification returns one email of an account by ID, to those who may see
// the account's emails (see Notifications); to anyone else it does not exist.
func (s *Service) Notification(ctx context.Context, id string) (*Notification, error) {
	var r notificationRow
	err := s.ReadAdminRecord(ctx, id, "notification", func(q tenant.Queryer) error {
		return tenant.DBError(q.GetContext(ctx, &r, `SELECT `+notificationColumns+` FROM outbox WHERE id = $1`, id))
	})
	if err != nil {
		return nil, err
	}
	return r.notification(), nil
}

// Backlog is how many emails wait to be sent (PENDING or SENDING) and when
// the oldest of them was written; oldest is zero when none waits. For
// metrics: an outbox whose oldest email keeps ageing is stuck.
func Backlog(ctx context.Context, q tenant.Queryer) (n int, oldest time.Time, err error) {
	var row struct {
		N      int        `db:"n"`
		Oldest *time.Time `db:"oldest"`
	}
	if err := q.GetContext(ctx, &row, `SELECT count(*) AS n, min(created_at) AS oldest FROM outbox
		WHERE status IN ('PENDING', 'SENDING')`); err != nil {
		return 0, time.Time{}, tenant.DBError(err)
	}
	if row.Oldest != nil {
		oldest = *row.Oldest
	}
	return row.N, oldest, nil
}
