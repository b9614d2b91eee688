package sftp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"github.com/skiffhq/skiff/tenant/storageuse"
)

// TenantBackend connects the SSH server to the product: logins resolve
// through the tenant directory (PostgreSQL), host keys come from the
// database, and each session is a vfs tree on the account's storage, gated
// by the user's continued right to use SFTP.
type TenantBackend struct {
	Directory *sftplogin.Directory
	Storage   storage.Storage
	// Shares lists the project folders shared with a user; nil means none.
	Shares SharedFolders
	// Quotas charges what sessions store to the accounts' storage quotas;
	// nil means none (and statvfs shows the file system).
	Quotas *storageuse.Service
	// QuotaPoolIdle is how long a session keeps quota room it reserved
	// ahead of its writes and no longer draws on (vfs.DefaultQuotaPoolIdle
	// when zero).
	QuotaPoolIdle time.Duration
	// Logger receives the sessions' failures; pass the one given to the
	// Server, made with SafeLogger, so that they share one rate limit.
	Logger *slog.Logger
	// Handles caps the open handles (files and directory listings) per
	// connection, user, account and process; nil caps only each channel's
	// 1,024.
	Handles *vfs.Counter
	// Replies is the process's budget of queued reply memory; nil bounds
	// only each channel's 16 queued replies.
	Replies *vfs.ReplyBudget
	// DBTimeout bounds each database call of the SFTP path: a login's
	// lookups (on top of its throttling pause), the session gate, marking
	// a key used, host keys and shared folders. DefaultDBTimeout when zero.
	DBTimeout time.Duration
	// Grace is how long a session keeps its last known rights while the
	// database does not answer (vfs.DefaultGrace when zero).
	Grace time.Duration
	// SharesTTL is how long a session trusts its copy of the user's shared
	// folders when nothing says they changed (vfs.DefaultCacheTTL when
	// zero). SharesChanged makes sessions read them again at once.
	SharesTTL time.Duration
	// Metrics counts the sessions' requests, bytes and transfers
	// (Metrics.VFS of the server's); nil counts nothing.
	Metrics *vfs.Metrics
	// Activity receives the sessions' operations for the accounts'
	// activity logs; nil records none.
	Activity ActivityLog

	open openSessions // the sessions Open made, for RecheckSessions
}

// DefaultDBTimeout is TenantBackend.DBTimeout's default.
const DefaultDBTimeout = 5 * time.Second

func (b *TenantBackend) dbTimeout() time.Duration {
	if b.DBTimeout <= 0 {
		return DefaultDBTimeout
	}
	return b.DBTimeout
}

// bounded runs call with a deadline of d and returns at the deadline even
// if call has not: lib/pq waits for the server's answer to a cancelled
// query, which a hung server or a broken network never sends. The abandoned
// call ends when its connection does; database/sql hands no other call that
// connection meanwhile. A call that finished is always answered with its
// own result, even when the deadline passed at the same moment.
func bounded[T any](parent context.Context, d time.Duration, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel() // after the answer: cancelling first would race it
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-done:
			return r.v, r.err
		default:
		}
		var zero T
		if err := parent.Err(); err != nil { // the caller gave up (the client left)
			return zero, err
		}
		return zero, fmt.Errorf("the database did not answer within %v: %w", d, ctx.Err())
	}
}

// DedicatedIPAccount implements DedicatedIPRoutes, from the directory's
// copy of the dedicated IPs in use.
func (b *TenantBackend) DedicatedIPAccount(dest netip.Addr) string {
	return b.Directory.DedicatedIPAccount(dest)
}

// PasswordLogin implements Directory.
// A password login may pause for throttling (up to tenant.MaxSlow) besides
// its database calls.
func (b *TenantBackend) PasswordLogin(ctx context.Context, dest, remote netip.Addr, login, password string) (*sftplogin.Login, error) {
	return bounded(ctx, b.dbTimeout()+tenant.MaxSlow, func(ctx context.Context) (*sftplogin.Login, error) {
		return b.Directory.PasswordLogin(ctx, dest, remote, login, password)
	})
}

// PublicKeyLogin implements Directory.
func (b *TenantBackend) PublicKeyLogin(ctx context.Context, dest, remote netip.Addr, login string, key ssh.PublicKey) (*sftplogin.Login, error) {
	return bounded(ctx, b.dbTimeout(), func(ctx context.Context) (*sftplogin.Login, error) {
		return b.Directory.PublicKeyLogin(ctx, dest, remote, login, key)
	})
}

// MarkKeyUsed implements KeyUseRecorder: the key's "last used" time.
func (b *TenantBackend) MarkKeyUsed(ctx context.Context, login *sftplogin.Login) error {
	_, err := bounded(ctx, b.dbTimeout(), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.Directory.MarkKeyUsed(ctx, login)
	})
	return err
}

// MarkLogin implements LoginRecorder: the user's last SFTP login.
func (b *TenantBackend) MarkLogin(ctx context.Context, login *sftplogin.Login) error {
	_, err := bounded(ctx, b.dbTimeout(), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.Directory.MarkLogin(ctx, login)
	})
	return err
}

// HostKeys implements HostKeys.
func (b *TenantBackend) HostKeys(ctx context.Context, dest netip.Addr) ([]ssh.Signer, error) {
	return bounded(ctx, b.dbTimeout(), func(ctx context.Context) ([]ssh.Signer, error) {
		return b.Directory.HostKeys(ctx, dest)
	})
}

// Open implements Sessions: a vfs session whose every operation first checks
// that the user may still use SFTP with the tree and the credential (key or
// password) the session was opened with, from the address it came from. The
// jail is fixed when the session starts, so a jail change on any node ends
// it and the client reconnects to the tree it now has. The check tells
// "access withdrawn" (the session ends) from "the database did not answer"
// (the session keeps its rights for Grace). A session of a key with an
// expiry is checked again when the key expires, and every session when
// RecheckSessions names its user.
func (b *TenantBackend) Open(ctx context.Context, l *sftplogin.Login) (Session, error) {
	login := *l
	e := &openSession{login: &login, now: b.Directory.Now}
	cfg := vfs.Config{
		AccountID: login.AccountID,
		UserID:    login.UserID,
		Login:     login.Login,
		Jailed:    login.Jailed,
		Storage:   b.Storage,
		Grace:     b.Grace,
		Gate: vfs.GateFunc(func(ctx context.Context) error {
			access, err := bounded(ctx, b.dbTimeout(), func(ctx context.Context) (sftplogin.Access, error) {
				return b.Directory.CheckLogin(ctx, &login)
			})
			switch {
			case err == nil:
				e.expiresAt(access.KeyExpiresAt)
				return nil
			case errors.Is(err, sftplogin.ErrSFTPAccessWithdrawn):
				return err
			}
			return fmt.Errorf("%w: %w", vfs.ErrGateUnavailable, err)
		}),
		Logger:        SafeLogger(b.Logger).With("session", SessionID(ctx)), // paths are the client's
		Quota:         b.sessionQuota(login.AccountID),
		QuotaPoolIdle: b.QuotaPoolIdle,
		Handles:       b.Handles.For(login.AccountID, login.UserID),
		Replies:       b.Replies.For(),
		Metrics:       b.Metrics,
	}
	if b.Activity != nil {
		cfg.Activity = &sessionActivity{log: b.Activity, base: sessionEvent(ctx, &login)}
	}
	if b.Shares != nil {
		shares := SessionShares(b.Shares, login.AccountID, login.UserID)
		cfg.Shares = vfs.SharesFunc(func(ctx context.Context) ([]vfs.SharedFolder, error) {
			return bounded(ctx, b.dbTimeout(), shares.SharedFolders)
		})
		cfg.SharesTTL = b.SharesTTL
	}
	cfg.SharesChanged = b.open.acquire(login.AccountID)
	sess, err := vfs.NewSession(ctx, cfg)
	if err != nil {
		b.open.release(login.AccountID)
		return nil, err
	}
	e.sess, e.recheck = sess, func() { b.recheck(e) }
	b.open.add(e)
	e.expiresAt(login.KeyExpiresAt)
	return &trackedSession{Session: sess, b: b, e: e}, nil
}

// trackedSession is a session Open made: closing it forgets it.
type trackedSession struct {
	*vfs.Session
	b *TenantBackend
	e *openSession
}

func (t *trackedSession) Close() error {
	t.b.open.remove(t.e)
	return t.Session.Close()
}

// RecheckSessions checks again, now, whether each open session of the
// user (every user of the account when userID is empty) may go on, and
// ends those whose access is gone, idle or not. The checks run in the
// background; it returns at once. Call it when another node may have
// withdrawn access (sftplogin.ListenAccess).
func (b *TenantBackend) RecheckSessions(accountID, userID string) {
	sessions := b.open.matching(accountID, userID)
	if len(sessions) == 0 {
		return
	}
	go func() {
		// A few at a time: after a reconnection every session is checked,
		// and the pool is shared with logins and the API.
		sem := make(chan struct{}, recheckConcurrency)
		for _, e := range sessions {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				b.recheck(e)
			}()
		}
	}()
}

// SharesChanged makes this node's open sessions of the account (every
// account when accountID is empty) read the user's shared folders again at
// their next operation, however young their copy: call it when rights in
// project folders may have changed (policy.Enforcer.OnChange, which hears
// this node's changes and, by notification, every other node's). It costs
// an atomic increment; sessions compare the count on each lookup.
//
// An operation that looks its folder up after SharesChanged returns sees
// the rights as the database has them then; one that looked it up before
// finishes with the rights it found (as a file opened before a share's
// removal stays open).
func (b *TenantBackend) SharesChanged(accountID string) { b.open.sharesChanged(accountID) }

// recheckConcurrency bounds the checks RecheckSessions runs at once.
const recheckConcurrency = 8

// RecheckAll checks every open session again, as RecheckSessions does.
func (b *TenantBackend) RecheckAll() { b.RecheckSessions("", "") }

func (b *TenantBackend) recheck(e *openSession) {
	// The gate bounds its own database call.
	_ = e.sess.Recheck(context.Background())
}

// ListenAccess ends, within moments, the sessions on this node whose access
// another node withdrew: it hears sftplogin.AccessChannel at dsn and checks
// the named users' sessions again, until ctx ends. See sftplogin.ListenAccess.
func (b *TenantBackend) ListenAccess(ctx context.Context, dsn string, log *slog.Logger) error {
	return sftplogin.ListenAccess(ctx, dsn, b.AccessChanges(), log)
}

// AccessChanges is what ListenAccess does with what it hears, for
// sftplogin.ListenAccessOn on the node's shared notification connection.
func (b *TenantBackend) AccessChanges() sftplogin.AccessChanges {
	return sftplogin.AccessChanges{Changed: b.RecheckSessions, Resync: b.RecheckAll}
}

// openSession is one session Open made.
type openSession struct {
	login   *sftplogin.Login
	sess    *vfs.Session
	recheck func()
	now     func() time.Time // the Directory's clock; nil means time.Now

	mu      sync.Mutex
	expiry  time.Time // the key's expiry timer is set for; zero without one
	timer   *time.Timer
	stopped bool
}

// expiresAt arms (or moves, or stops) the check at the session's key's
// expiry, as the latest check read it.
func (e *openSession) expiresAt(t *time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped || e.recheck == nil {
		return
	}
	if t == nil {
		if e.timer != nil {
			e.timer.Stop()
			e.timer, e.expiry = nil, time.Time{}
		}
		return
	}
	if e.timer != nil && e.expiry.Equal(*t) {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	// A check that found the key live at its expiry (clocks apart) asks
	// again a second later rather than at once.
	e.expiry = *t
	e.timer = time.AfterFunc(max(t.Sub(now()), 0), func() {
		e.recheck()
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.timer != nil && e.expiry.Equal(*t) && !e.stopped {
			e.timer.Reset(time.Second)
		}
	})
}

func (e *openSession) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	if e.timer != nil {
		e.timer.Stop()
	}
}

// openSessions are the open sessions by user.
type openSessions struct {
	mu     sync.Mutex
	byUser map[userKey]map[*openSession]struct{}
	shares map[string]*accountShares // by account, while it has sessions
}

// accountShares counts the changes to an account's rights in project
// folders, for its open sessions.
type accountShares struct {
	changed  vfs.Generation
	sessions int
}

// acquire returns the account's count of changes, for a session starting;
// release it when the session ends.
func (o *openSessions) acquire(accountID string) *vfs.Generation {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.shares == nil {
		o.shares = make(map[string]*accountShares)
	}
	a := o.shares[accountID]
	if a == nil {
		a = &accountShares{}
		o.shares[accountID] = a
	}
	a.sessions++
	return &a.changed
}

func (o *openSessions) release(accountID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if a := o.shares[accountID]; a != nil {
		if a.sessions--; a.sessions <= 0 {
			delete(o.shares, accountID)
		}
	}
}

// sharesChanged bumps the account's count of changes, every account's
// when accountID is empty.
func (o *openSessions) sharesChanged(accountID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if accountID != "" {
		if a := o.shares[accountID]; a != nil {
			a.changed.Bump()
		}
		return
	}
	for _, a := range o.shares {
		a.changed.Bump()
	}
}

func (o *openSessions) add(e *openSession) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byUser == nil {
		o.byUser = make(map[userKey]map[*openSession]struct{})
	}
	k := userKey{e.login.AccountID, e.login.UserID}
	if o.byUser[k] == nil {
		o.byUser[k] = make(map[*openSession]struct{})
	}
	o.byUser[k][e] = struct{}{}
}

func (o *openSessions) remove(e *openSession) {
	e.stop()
	o.mu.Lock()
	k := userKey{e.login.AccountID, e.login.UserID}
	_, held := o.byUser[k][e]
	delete(o.byUser[k], e)
	if len(o.byUser[k]) == 0 {
		delete(o.byUser, k)
	}
	o.mu.Unlock()
	if held { // removed once, released once
		o.release(e.login.AccountID)
	}
}

// matching returns the sessions of the user, of every user of the account
// when userID is empty, of everyone when accountID is empty too.
func (o *openSessions) matching(accountID, userID string) []*openSession {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*openSession
	for k, sessions := range o.byUser {
		if (accountID != "" && k.accountID != accountID) || (userID != "" && k.userID != userID) {
			continue
		}
		for e := range sessions {
			out = append(out, e)
		}
	}
	return out
}

// SessionEnder adapts a Server to tenant.SessionEnder, which has no use for
// the number of connections closed.
type SessionEnder struct{ Server *Server }

var _ tenant.SessionEnder = SessionEnder{}

// Disconnect ends the user's connections on this node.
func (e SessionEnder) Disconnect(accountID, userID string) { e.Server.Disconnect(accountID, userID) }

// DisconnectCredential ends the user's connections of one key (or the password) on this node.
func (e SessionEnder) DisconnectCredential(accountID, userID, keyID string) {
	e.Server.DisconnectCredential(accountID, userID, keyID)
}

// DisconnectAccount ends every connection of the account's users on this node.
func (e SessionEnder) DisconnectAccount(accountID string) { e.Server.DisconnectAccount(accountID) }
