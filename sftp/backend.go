package sftp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
)

// TenantBackend connects the SSH server to the product: logins resolve
// through the tenant directory (PostgreSQL), host keys come from the
// database, and each session is a vfs tree on the account's storage, gated
// by the user's continued right to use SFTP.
type TenantBackend struct {
	Directory *tenant.Directory
	Storage   storage.Storage
	// Shares lists the project folders shared with a user; nil means none.
	Shares func(accountID, userID string) vfs.Shares
	Logger *slog.Logger
}

var (
	_ Directory      = (*TenantBackend)(nil)
	_ HostKeys       = (*TenantBackend)(nil)
	_ Sessions       = (*TenantBackend)(nil)
	_ KeyUseRecorder = (*TenantBackend)(nil)
)

// PasswordLogin implements Directory.
func (b *TenantBackend) PasswordLogin(ctx context.Context, dest, remote netip.Addr, login, password string) (*Login, error) {
	l, err := b.Directory.PasswordLogin(ctx, dest, remote, login, password)
	return loginFrom(l, err)
}

// PublicKeyLogin implements Directory.
func (b *TenantBackend) PublicKeyLogin(ctx context.Context, dest, remote netip.Addr, login string, key ssh.PublicKey) (*Login, error) {
	l, err := b.Directory.PublicKeyLogin(ctx, dest, remote, login, key)
	return loginFrom(l, err)
}

// RecordKeyUse implements KeyUseRecorder: the key's "last used" time.
func (b *TenantBackend) RecordKeyUse(ctx context.Context, l *Login) error {
	return b.Directory.MarkKeyUsedByFingerprint(ctx, l.AccountID, l.UserID, l.KeyFingerprint)
}

func loginFrom(l *tenant.SFTPLogin, err error) (*Login, error) {
	if err != nil {
		if errors.Is(err, tenant.ErrLoginFailed) {
			return nil, fmt.Errorf("%w: %w", ErrLoginFailed, err)
		}
		return nil, err
	}
	return &Login{AccountID: l.AccountID, UserID: l.UserID, Login: l.Login, Jailed: l.Jailed, KeyFingerprint: l.KeyFingerprint}, nil
}

// HostKeys implements HostKeys.
func (b *TenantBackend) HostKeys(ctx context.Context, dest netip.Addr) ([]ssh.Signer, error) {
	return b.Directory.HostKeys(ctx, dest)
}

// Open implements Sessions.
func (b *TenantBackend) Open(ctx context.Context, l *Login) (Session, error) {
	cfg := vfs.Config{
		AccountID: l.AccountID,
		UserID:    l.UserID,
		Jailed:    l.Jailed,
		Storage:   b.Storage,
		Gate: vfs.GateFunc(func(ctx context.Context) error {
			return b.Directory.SessionAllowed(ctx, l.AccountID, l.UserID)
		}),
		Logger: b.Logger,
	}
	if b.Shares != nil {
		cfg.Shares = b.Shares(l.AccountID, l.UserID)
	}
	return vfs.NewSession(ctx, cfg)
}

// SessionEnder adapts a Server to tenant.SessionEnder.
type SessionEnder struct{ Server *Server }

// Disconnect ends the user's connections on this node.
func (e SessionEnder) Disconnect(accountID, userID string) { e.Server.Disconnect(accountID, userID) }
