package sftp

import (
	"context"
	"errors"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/activity"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// ActivityLog receives the events of the accounts' SFTP activity logs
// (activity.Recorder, which queues them and writes them in batches). Record
// must return quickly: it runs on the login and request paths.
type ActivityLog interface {
	Record(activity.Event)
}

var _ ActivityLog = (*activity.Recorder)(nil)

// sessionEvent is the start of every event of one logged-in connection.
func sessionEvent(ctx context.Context, l *sftplogin.Login) activity.Event {
	ev := activity.Event{AccountID: l.AccountID, UserID: l.UserID, Login: l.LoginUsed, SessionID: SessionID(ctx)}
	if ev.Login == "" {
		ev.Login = l.Login
	}
	if l.Remote.IsValid() {
		ev.ClientAddr = l.Remote.String()
	}
	return ev
}

// recordLogin records a successful login.
func (s *Server) recordLogin(ctx context.Context, l *sftplogin.Login) {
	if s.cfg.Activity == nil {
		return
	}
	ev := sessionEvent(ctx, l)
	ev.Action, ev.Outcome = activity.ActionLogin, activity.Succeeded
	s.cfg.Activity.Record(ev)
}

// recordLogout records the end of a logged-in connection, how long it
// lasted and why it ended.
func (s *Server) recordLogout(ctx context.Context, l *sftplogin.Login, d time.Duration, reason string) {
	if s.cfg.Activity == nil {
		return
	}
	ev := sessionEvent(ctx, l)
	ev.Action, ev.Outcome, ev.Reason = activity.ActionLogout, activity.Succeeded, reason
	ev.SetDuration(d)
	s.cfg.Activity.Record(ev)
}

// loginRefusal is a refused login attempt the account's log may record.
type loginRefusal struct {
	accountID, userID string
	login, remote     string
	reason            string
}

// refusalOf is the login refusal err tells of, when it names the user (an
// unknown login belongs to no account: only the server log has it).
func refusalOf(err error, login, remote string) *loginRefusal {
	var r *sftplogin.Refusal
	if !errors.As(err, &r) {
		return nil
	}
	return &loginRefusal{accountID: r.AccountID, userID: r.UserID, login: login, remote: remote, reason: r.Reason}
}

// recordRefusal records a refused login attempt.
func (s *Server) recordRefusal(ctx context.Context, r *loginRefusal) {
	if s.cfg.Activity == nil || r == nil {
		return
	}
	s.cfg.Activity.Record(activity.Event{AccountID: r.accountID, UserID: r.userID, Login: r.login,
		Action: activity.ActionLogin, Outcome: activity.Refused, Reason: r.reason,
		ClientAddr: r.remote, SessionID: SessionID(ctx)})
}

// sessionActivity turns a vfs session's operations into activity events.
type sessionActivity struct {
	log  ActivityLog
	base activity.Event
}

var _ vfs.Activity = (*sessionActivity)(nil)

// opActions are the actions of vfs's operations.
var opActions = [...]activity.Action{
	vfs.OpUpload:   activity.ActionUpload,
	vfs.OpDownload: activity.ActionDownload,
	vfs.OpRemove:   activity.ActionDelete,
	vfs.OpRmdir:    activity.ActionRmdir,
	vfs.OpMkdir:    activity.ActionMkdir,
	vfs.OpRename:   activity.ActionRename,
	vfs.OpCopy:     activity.ActionCopy,
}

// Record implements vfs.Activity. A loginRefusal for lack of rights is a
// PERMISSION_DENIED event whose reason names the operation refused.
func (a *sessionActivity) Record(op vfs.Op) {
	ev := a.base
	ev.At, ev.Path, ev.TargetPath = op.At, op.Path, op.Target
	action := opActions[op.Kind]
	ev.Action, ev.Reason = action, op.Err
	switch op.Outcome {
	case vfs.Done:
		ev.Outcome = activity.Succeeded
	case vfs.Failed:
		ev.Outcome = activity.Failed
	case vfs.Interrupted:
		ev.Outcome = activity.Interrupted
	case vfs.Denied:
		ev.Action, ev.Outcome = activity.ActionPermissionDenied, activity.Refused
		ev.Reason = string(action) + ": " + op.Err
	}
	switch op.Kind {
	case vfs.OpUpload, vfs.OpDownload:
		if op.Outcome != vfs.Denied {
			ev.SetBytes(op.Bytes)
			ev.SetDuration(op.Duration)
		}
		if op.Outcome == vfs.Done {
			ev.SetFolder(op.FolderID, op.FolderPath)
		}
	case vfs.OpCopy:
		if op.Outcome != vfs.Denied {
			ev.SetBytes(op.Bytes)
		}
	}
	a.log.Record(ev)
}
