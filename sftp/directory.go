package sftp

import (
	"context"
	"io"
	"net/netip"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// Directory resolves SFTP credentials to a sftplogin.Login: who a successful
// authentication resolved to (the server sets its KeyFingerprint from the
// key the handshake verified, hands it to Sessions.Open, and files the
// connection under its AccountID and UserID for Server.Disconnect). dest is the address the
// client connected to (from the PROXY header behind a trusted load balancer),
// which selects the account on a dedicated IP; remote is the client's real
// address. Both methods must do the same work whether or not the login
// exists, and return an error wrapping sftplogin.ErrLoginFailed for every expected
// refusal.
type Directory interface {
	PasswordLogin(ctx context.Context, dest, remote netip.Addr, login, password string) (*sftplogin.Login, error)
	// PublicKeyLogin answers whether key may log in as login. It is also
	// called for keys the client merely offers without proving it holds the
	// private key, so it must not record the key as used: see KeyUseRecorder.
	// key is never a certificate.
	PublicKeyLogin(ctx context.Context, dest, remote netip.Addr, login string, key ssh.PublicKey) (*sftplogin.Login, error)
}

// KeyUseRecorder is optionally implemented by a Directory to learn that a
// key really logged in (the client proved it holds the private key), to
// update the key's "last used" time. keyID is the login's KeyID. A failure
// is logged and does not end the connection.
type KeyUseRecorder interface {
	MarkKeyUsed(ctx context.Context, login *sftplogin.Login) error
}

// LoginRecorder is optionally implemented by a Directory to record that a
// password login succeeded (the user's "last SFTP login"); key logins are
// recorded by KeyUseRecorder. The server calls it after authentication, in
// the background: it must bound its own time. A failure is logged.
type LoginRecorder interface {
	MarkLogin(ctx context.Context, login *sftplogin.Login) error
}

// HostKeys gives the host keys to present to a client that connected to
// dest: a dedicated IP's account keys, or the deployment's keys. At most one
// key per key type is used (the first). RSA keys are always restricted to
// rsa-sha2-256/512 by the server, whatever signer is returned.
type HostKeys interface {
	HostKeys(ctx context.Context, dest netip.Addr) ([]ssh.Signer, error)
}

// Sessions opens the per-connection SFTP session of an authenticated user.
// The sftp/vfs package provides the real implementation.
type Sessions interface {
	// Open is called once per connection after authentication. ctx ends
	// when the connection ends. An error closes the connection.
	Open(ctx context.Context, login *sftplogin.Login) (Session, error)
}

// Session is one connection's SFTP session. Serve is called once for each
// "sftp" subsystem channel the client opens (possibly concurrently) and
// returns when the channel or the connection ends; an error wrapping
// ErrSessionDenied ends the connection too. Close is called once, after
// every Serve has returned, when the connection ends.
type Session interface {
	Serve(channel io.ReadWriteCloser) error
	Close() error
}
