package sftp

import (
	"context"
	"log/slog"
	"net/netip"

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
}

var (
	_ Directory      = (*TenantBackend)(nil)
	_ HostKeys       = (*TenantBackend)(nil)
	_ Sessions       = (*TenantBackend)(nil)
	_ KeyUseRecorder = (*TenantBackend)(nil)

	_ DedicatedIPRoutes = (*TenantBackend)(nil)
)

// DedicatedIPAccount implements DedicatedIPRoutes, from the directory's
// copy of the dedicated IPs in use.
func (b *TenantBackend) DedicatedIPAccount(dest netip.Addr) string {
	return b.Directory.DedicatedIPAccount(dest)
}

// PasswordLogin implements Directory.
func (b *TenantBackend) PasswordLogin(ctx context.Context, dest, remote netip.Addr, login, password string) (*sftplogin.Login, error) {
	return b.Directory.PasswordLogin(ctx, dest, remote, login, password)
}

// PublicKeyLogin implements Directory.
func (b *TenantBackend) PublicKeyLogin(ctx context.Context, dest, remote netip.Addr, login string, key ssh.PublicKey) (*sftplogin.Login, error) {
	return b.Directory.PublicKeyLogin(ctx, dest, remote, login, key)
}

// MarkKeyUsed implements KeyUseRecorder: the key's "last used" time.
func (b *TenantBackend) MarkKeyUsed(ctx context.Context, login *sftplogin.Login) error {
	return b.Directory.MarkKeyUsed(ctx, login)
}

// HostKeys implements HostKeys.
func (b *TenantBackend) HostKeys(ctx context.Context, dest netip.Addr) ([]ssh.Signer, error) {
	return b.Directory.HostKeys(ctx, dest)
}

// Open implements Sessions: a vfs session whose every operation first checks
// that the user may still use SFTP with the tree and the credential (key or
// password) the session was opened with. The jail is fixed when the session starts, so a jail change on any
// node ends it and the client reconnects to the tree it now has.
func (b *TenantBackend) Open(ctx context.Context, l *sftplogin.Login) (Session, error) {
	accountID, userID, jailed := l.AccountID, l.UserID, l.Jailed
	login := *l
	cfg := vfs.Config{
		AccountID: accountID,
		UserID:    userID,
		Login:     l.Login,
		Jailed:    jailed,
		Storage:   b.Storage,
		Gate: vfs.GateFunc(func(ctx context.Context) error {
			return b.Directory.LoginAllowed(ctx, &login)
		}),
		Logger:  SafeLogger(b.Logger), // paths are the client's
		Quota:   b.sessionQuota(accountID),
		Handles: b.Handles.For(accountID, userID),
		Replies: b.Replies.For(),
	}
	if b.Shares != nil {
		cfg.Shares = SessionShares(b.Shares, accountID, userID)
	}
	return vfs.NewSession(ctx, cfg)
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
