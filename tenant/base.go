package tenant

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// Base is what every room's service of the domain holds: the store of
// record, the clock, and the SFTP sessions to end when access is withdrawn.
// Services embed it; nothing else belongs here.
type Base struct {
	DB *DB
	// Now is the clock; nil means time.Now. Tests move it to expire trials,
	// tokens and keys without sleeping.
	Now func() time.Time
	// Sessions ends a user's live SFTP sessions on this node when their
	// access is withdrawn; other nodes hear of it by notification (channel
	// skiff_sftp_access, sent by triggers: migration 00080). May be nil.
	Sessions SessionEnder
}

// Time is the service's current time.
func (b *Base) Time() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}

// EndSessions ends one user's SFTP sessions on this node.
func (b *Base) EndSessions(accountID, userID string) {
	if b.Sessions != nil {
		b.Sessions.Disconnect(accountID, userID)
	}
}

// EndCredentialSessions ends, on this node, the user's SFTP sessions that
// logged in with the SSH key keyID, or with their password when keyID is
// empty. Other nodes hear of the change by notification and check their
// sessions of the user at once, which finds the key gone or the password
// changed.
func (b *Base) EndCredentialSessions(accountID, userID, keyID string) {
	if b.Sessions != nil {
		b.Sessions.DisconnectCredential(accountID, userID, keyID)
	}
}

// EndAccountSessions ends the SFTP sessions of every user of the account on this node.
func (b *Base) EndAccountSessions(accountID string) {
	if b.Sessions != nil {
		b.Sessions.DisconnectAccount(accountID)
	}
}

// InAccount runs fn in a transaction scoped to accountID (see DB.InAccount).
func (b *Base) InAccount(ctx context.Context, accountID string, fn func(q Queryer) error) error {
	return b.DB.InAccount(ctx, accountID, func(tx *sqlx.Tx) error { return fn(tx) })
}

// ChangeUser is the frame of an owner's or administrator's change to one
// user of their account: it checks the role, locks the user's row in the
// account's transaction, refuses a change to an owner by anyone but an owner
// (ErrOwnersOnly), runs change, and returns the user as changed (nil if
// anything failed, in which case nothing was saved).
func (b *Base) ChangeUser(ctx context.Context, userID string, change func(p *Principal, q Queryer, u *User) error) (*User, error) {
	p, err := RequireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	var u *User
	err = b.InAccount(ctx, p.AccountID, func(q Queryer) error {
		var err error
		if u, err = GetUser(ctx, q, userID, true); err != nil {
			return err
		}
		if !p.MayChange(u) {
			return ErrOwnersOnly
		}
		return change(p, q, u)
	})
	return Result(u, err)
}

// SessionEnder ends SFTP sessions on this node; the SSH server implements it.
type SessionEnder interface {
	// Disconnect ends one user's sessions.
	Disconnect(accountID, userID string)
	// DisconnectCredential ends one user's sessions that logged in with the
	// SSH key keyID, or with their password when keyID is empty.
	DisconnectCredential(accountID, userID, keyID string)
	// DisconnectAccount ends the sessions of every user of the account.
	DisconnectAccount(accountID string)
}
