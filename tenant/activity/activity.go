// Package activity is the SFTP activity log of each account: what every
// SFTP session did (logins and their refusals, logouts, transfers, deletes,
// renames, directories, copies, permission refusals), written in batches by
// each node's Recorder, read by the account's owners and administrators and
// by each user for themselves, kept for a retention period; and the project
// folders' upload digests, emailed through the outbox.
package activity

import (
	"time"

	"github.com/skiffhq/skiff/tenant"
)

// Action is what an event records.
type Action string

const (
	ActionLogin            Action = "LOGIN" // Outcome SUCCESS, or REFUSED with the reason
	ActionLogout           Action = "LOGOUT"
	ActionUpload           Action = "UPLOAD"   // one per transfer, at its close
	ActionDownload         Action = "DOWNLOAD" // one per transfer, at its close
	ActionDelete           Action = "DELETE"
	ActionRename           Action = "RENAME"
	ActionMkdir            Action = "MKDIR"
	ActionRmdir            Action = "RMDIR"
	ActionCopy             Action = "COPY" // copy-data: Path to TargetPath
	ActionPermissionDenied Action = "PERMISSION_DENIED"
)

// Actions lists every action.
func Actions() []Action {
	return []Action{ActionLogin, ActionLogout, ActionUpload, ActionDownload, ActionDelete, ActionRename,
		ActionMkdir, ActionRmdir, ActionCopy, ActionPermissionDenied}
}

// Valid reports whether a is one of Actions.
func (a Action) Valid() bool {
	for _, x := range Actions() {
		if a == x {
			return true
		}
	}
	return false
}

// Outcome is how an event's operation ended.
type Outcome string

const (
	Succeeded   Outcome = "SUCCESS"
	Failed      Outcome = "FAILED"      // the operation failed; Reason says why
	Interrupted Outcome = "INTERRUPTED" // a transfer cut by the connection's end
	Refused     Outcome = "REFUSED"     // a login refused, or an operation the user has no right to
)

// Event is one entry of an account's SFTP activity log.
type Event struct {
	ID        int64     `db:"id"` // set once recorded
	AccountID string    `db:"account_id"`
	At        time.Time `db:"at"`
	UserID    string    `db:"user_id"`
	// Login is what the client logged in as: the login ID or a custom login.
	Login   string  `db:"login"`
	Action  Action  `db:"action"`
	Outcome Outcome `db:"outcome"`
	// Path is the path as the user sees it in their SFTP tree
	// ("/My Files/report.pdf"); TargetPath is where a rename or copy went.
	Path       string `db:"path"`
	TargetPath string `db:"target_path"`
	// Bytes moved by a transfer or a copy; nil for other actions.
	Bytes *int64 `db:"bytes"`
	// Duration of a transfer (open to close) or of a session (at logout).
	DurationMS *int64 `db:"duration_ms"`
	// Reason is why the operation failed or was refused, as the operator
	// sees it (a login refusal's real reason, never told to the client).
	Reason     string `db:"reason"`
	ClientAddr string `db:"client_addr"`
	Node       string `db:"node"`
	SessionID  string `db:"session_id"`
	// FolderID is the project folder an upload went to, FolderPath the
	// file's path inside it; empty elsewhere.
	FolderID   *string `db:"folder_id"`
	FolderPath *string `db:"folder_path"`
}

// SetBytes sets the bytes a transfer moved.
func (e *Event) SetBytes(n int64) { e.Bytes = &n }

// SetDuration sets how long the transfer or session lasted.
func (e *Event) SetDuration(d time.Duration) {
	ms := d.Milliseconds()
	e.DurationMS = &ms
}

// SetFolder sets the project folder an upload went to.
func (e *Event) SetFolder(id, path string) {
	if id != "" {
		e.FolderID, e.FolderPath = &id, &path
	}
}

// Duration is DurationMS as a duration; 0 without one.
func (e *Event) Duration() time.Duration {
	if e.DurationMS == nil {
		return 0
	}
	return time.Duration(*e.DurationMS) * time.Millisecond
}

// Service reads the activity log and keeps the upload notifications. Its
// writes come from the nodes' Recorders.
type Service struct {
	*tenant.Base
	// Folders tells whether a user may still see a project folder: its
	// digests go only to members. Required for the digests.
	Folders FolderAccess
	// DigestInterval is how often a folder's subscribers get its digest
	// (DefaultDigestInterval when zero).
	DigestInterval time.Duration
	// DigestSettle is how far behind the clock a digest ends: an upload
	// closed just before is still in its node's recorder queue (written
	// within about a second), and is listed by the next digest instead
	// (DefaultDigestSettle when zero).
	DigestSettle time.Duration
	// Live hands the recorders' notifications to this node's watchers
	// (Watch); skiff serve runs its Listen.
	Live Live
}

// DefaultRetention is how long events are kept unless the operator sets
// --activity-retention.
const DefaultRetention = 90 * 24 * time.Hour

// DefaultDigestSettle is Service.DigestSettle's default.
const DefaultDigestSettle = 30 * time.Second

// DefaultDigestInterval is how often upload digests are sent unless the
// operator sets --upload-digest-interval.
const DefaultDigestInterval = 15 * time.Minute
