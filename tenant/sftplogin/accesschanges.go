package sftplogin

import (
	"context"
	"log/slog"
	"strings"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/tenant"
)

// AccessChannel is the PostgreSQL channel on which every change that may
// withdraw an open SFTP session's access is announced at commit (migration
// 00080 says which): "<account id> <user id>" for one user, "<account id>"
// for a whole account.
const AccessChannel = "skiff_sftp_access"

// AccessChanges is told of the changes ListenAccess hears. Its functions run
// on ListenAccess's goroutine and must not block for long.
type AccessChanges struct {
	// Changed names the account and the user (empty for every user of the
	// account) whose open sessions must be checked again now.
	Changed func(accountID, userID string)
	// Resync runs when notifications may have been missed (at first and
	// after every reconnection): every open session must be checked again.
	Resync func()
}

// ListenAccess reports the access changes committed on any node, through
// notifications on AccessChannel at dsn, to h until ctx ends. While its
// connection is down, nothing is reported: sessions then rely on their
// gate's periodic check. It returns ctx.Err() when ctx ends, or an error if
// the server refused to LISTEN. Call it (or ListenAccessOn) once per node, in
// a goroutine.
func ListenAccess(ctx context.Context, dsn string, h AccessChanges, log *slog.Logger) error {
	return ListenAccessOn(ctx, pglisten.Start(ctx, dsn, log), h, log)
}

// ListenAccessOn is ListenAccess on the node's shared notification
// connection l.
func ListenAccessOn(ctx context.Context, l *pglisten.Listener, h AccessChanges, log *slog.Logger) error {
	return l.Listen(ctx, AccessChannel, pglisten.Handler{
		Name: "SFTP access changes",
		Notify: func(payload string) {
			if account, user, ok := parseAccessChange(payload); ok {
				h.Changed(account, user)
			}
		},
		Resync:    h.Resync,
		Listening: func(bool) {},
		Fallback:  "open sessions see revocations at their next operation",
		Log:       log,
	})
}

// parseAccessChange reads a notification's payload; ok is false for one
// that names no account.
func parseAccessChange(payload string) (accountID, userID string, ok bool) {
	accountID, userID, _ = strings.Cut(payload, " ")
	if !tenant.IsUUID(accountID) || (userID != "" && !tenant.IsUUID(userID)) {
		return "", "", false
	}
	return accountID, userID, true
}
