package sftp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"golang.org/x/crypto/ssh"
)

// Permissions.Extensions keys the server sets during authentication.
const (
	extMethod         = "skiff-auth-method"     // publickey, password or keyboard-interactive
	extKeyFingerprint = "skiff-key-fingerprint" // SHA256 fingerprint of the accepted key
)

// loginData is the Permissions.ExtraData key holding the *sftplogin.Login.
type loginData struct{}

// errDenied is the one error every auth callback returns to x/crypto, so a
// client learns nothing from which check failed. (x/crypto sends the same
// failure message whatever the error; this keeps it so in our own code.)
var errDenied = errors.New("permission denied")

// serverConfig builds the SSH configuration for one connection. It is built
// per connection because the host keys depend on the destination and the
// callbacks need the route; building it is cheap next to the key exchange.
func (s *Server) serverConfig(ctx context.Context, c *conn, rt route, log *slog.Logger) (*ssh.ServerConfig, error) {
	signers, err := s.cfg.HostKeys.HostKeys(ctx, rt.dest)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{
		Config: ssh.Config{
			KeyExchanges: keyExchanges,
			Ciphers:      s.ciphers,
			MACs:         s.macs,
		},
		PublicKeyAuthAlgorithms: publicKeyAuthAlgorithms,
		MaxAuthTries:            s.cfg.Limits.MaxAuthTries,
		ServerVersion:           ServerVersion,
	}
	seen := map[string]bool{}
	for _, signer := range signers {
		hs, err := hostKeySigner(signer)
		if err != nil {
			log.Error("sftp host key skipped", "err", err)
			continue
		}
		// x/crypto keeps one key per type, the last added; keep the first.
		if t := hs.PublicKey().Type(); !seen[t] {
			seen[t] = true
			cfg.AddHostKey(hs)
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("no usable host key for %v", rt.dest)
	}

	a := &authenticator{dir: s.cfg.Directory, ctx: ctx, rt: rt, log: log, sessions: s.sessions, conn: c, closing: s.isClosing, metrics: s.cfg.Metrics,
		refused: func(r *loginRefusal) { s.recordRefusal(ctx, r) }}
	cfg.PasswordCallback = a.password
	cfg.KeyboardInteractiveCallback = a.keyboardInteractive
	cfg.PublicKeyCallback = a.publicKey
	cfg.VerifiedPublicKeyCallback = a.verifiedPublicKey
	return cfg, nil
}

// authenticator holds the callbacks of one connection's authentication.
type authenticator struct {
	dir Directory
	ctx context.Context // ends at the handshake deadline
	rt  route
	log *slog.Logger
	// sessions counts logged-in connections: a login over one of its caps
	// is refused with the cap's message. The callback that completes a
	// login takes the slot, into conn.session, before the client hears of
	// its success, so that two logins at once cannot both take the last.
	sessions *vfs.Counter
	conn     *conn
	// closing reports whether the server is shutting down: a login then
	// gets the shutdown message rather than a session.
	closing func() bool
	metrics *Metrics
	// refused records a refused login in the account's activity log.
	refused func(*loginRefusal)
}

// takeSession takes the login's slot under the session caps, or returns the
// refusal to give the client (logged, and shown as a banner).
func (a *authenticator) takeSession(md ssh.ConnMetadata, method string, l *sftplogin.Login, take bool) error {
	h := a.sessions.For(l.AccountID, l.UserID)
	var err error
	if take {
		err = h.Acquire()
	} else {
		err = a.sessions.Check(l.AccountID, l.UserID)
	}
	if err != nil {
		a.metrics.refused("sessions", "", err)
		a.metrics.auth(method, "refused")
		a.log.Info("sftp login refused", "method", method, "login", md.User(), "remote", a.rt.remote.String(),
			"account", l.AccountID, "user", l.UserID, "reason", err.Error())
		a.refused(&loginRefusal{accountID: l.AccountID, userID: l.UserID, login: md.User(), remote: a.rt.remote.String(), reason: err.Error()})
		// The banner is the one place an SSH client shows the server's
		// words during authentication: the user learns why.
		return &ssh.BannerError{Err: errDenied, Message: err.Error() + "\r\n"}
	}
	if take {
		// The handshake runs on the connection's goroutine, which also
		// releases the slot (untrack) when the connection ends.
		a.conn.session.Release()
		a.conn.session = h
	}
	return nil
}

func (a *authenticator) password(md ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
	login, err := a.dir.PasswordLogin(a.ctx, a.rt.dest, a.rt.remote, md.User(), string(password))
	return a.result(md, "password", login, err, "")
}

// keyboardInteractive asks for the password in one prompt, for clients set
// to use only keyboard-interactive (common on Windows GUIs).
func (a *authenticator) keyboardInteractive(md ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	answers, err := client("", "", []string{"Password: "}, []bool{false})
	if err != nil {
		return nil, err
	}
	if len(answers) != 1 {
		return nil, errDenied
	}
	login, err := a.dir.PasswordLogin(a.ctx, a.rt.dest, a.rt.remote, md.User(), answers[0])
	return a.result(md, "keyboard-interactive", login, err, "")
}

// publicKey answers whether a key may log in. x/crypto calls it both for a
// key the client merely offers (a query, no signature yet) and before
// checking a signature, and only the Permissions returned for the key whose
// signature then verifies end up in ServerConn.Permissions (its cache holds
// only the last key, and it calls VerifiedPublicKeyCallback with that key's
// Permissions). So the resolved Login is recorded in the Permissions, never
// in shared state, and checked against the verified key in
// verifiedPublicKey.
func (a *authenticator) publicKey(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	fp := ssh.FingerprintSHA256(key)
	if _, isCert := key.(*ssh.Certificate); isCert {
		// A certificate carries a key the directory may know, but honouring
		// it would mean trusting its CA, validity and principals too.
		a.metrics.auth("publickey", "failure")
		a.log.Info("sftp login refused", "method", "publickey", "login", md.User(),
			"key", fp, "reason", "user certificates are not supported")
		return nil, errDenied
	}
	login, err := a.dir.PublicKeyLogin(a.ctx, a.rt.dest, a.rt.remote, md.User(), key)
	return a.result(md, "publickey", login, err, fp)
}

// verifiedPublicKey runs once the client has proved it holds key's private
// half, with the Permissions publicKey returned for that same key. The
// fingerprint check guards against ever pairing a Login with another key.
func (a *authenticator) verifiedPublicKey(md ssh.ConnMetadata, key ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
	if perms == nil || perms.Extensions[extKeyFingerprint] != ssh.FingerprintSHA256(key) {
		a.metrics.auth("publickey", "failure")
		a.log.Error("sftp login refused: verified key does not match the accepted key", "login", md.User())
		return nil, errDenied
	}
	if l, ok := loginOf(perms); !ok {
		a.metrics.auth("publickey", "failure")
		return nil, errDenied
	} else if err := a.takeSession(md, "publickey", l, true); err != nil {
		return nil, err
	}
	a.metrics.auth("publickey", "success")
	return perms, nil
}

// result turns a Directory answer into x/crypto's, logging refusals with
// their real reason (never the password). fp is the key fingerprint for
// public-key logins.
func (a *authenticator) result(md ssh.ConnMetadata, method string, login *sftplogin.Login, err error, fp string) (*ssh.Permissions, error) {
	if err == nil && (login == nil || login.AccountID == "" || login.UserID == "") {
		// Fail closed: a Login that names nobody must not open a session.
		err = errors.New("directory returned no account or user and no error")
	}
	if err != nil {
		attrs := []any{"method", method, "login", md.User(), "remote", a.rt.remote.String()}
		if fp != "" {
			attrs = append(attrs, "key", fp)
		}
		if errors.Is(err, sftplogin.ErrLoginFailed) {
			a.metrics.auth(method, "failure")
			a.log.Info("sftp login refused", append(attrs, "reason", err.Error())...)
			if r := refusalOf(err, md.User(), a.rt.remote.String()); r != nil && fp != "" {
				a.conn.keyRefusal = r // recorded if no key or password gets in
			} else {
				a.refused(r)
			}
		} else {
			a.metrics.auth(method, "error")
			a.log.Error("sftp login failed: directory error", append(attrs, "err", err)...)
		}
		return nil, errDenied
	}
	if a.closing() {
		a.metrics.auth(method, "shutdown")
		a.log.Info("sftp login refused: server shutting down", "method", method, "login", md.User())
		a.refused(&loginRefusal{accountID: login.AccountID, userID: login.UserID, login: md.User(), remote: a.rt.remote.String(),
			reason: "server shutting down"})
		return nil, shuttingDown()
	}
	// A password login is complete here; a key is only accepted, and its
	// login completes in verifiedPublicKey once the client signs.
	if err := a.takeSession(md, method, login, fp == ""); err != nil {
		return nil, err
	}
	if fp == "" {
		a.metrics.auth(method, "success") // a key's login succeeds in verifiedPublicKey
	}
	l := *login // the connection keeps its own copy
	l.KeyFingerprint, l.LoginUsed = fp, md.User()
	if fp == "" {
		l.KeyID = "" // a password login names no key, whatever the directory said
	}
	perms := &ssh.Permissions{
		Extensions: map[string]string{extMethod: method},
		ExtraData:  map[any]any{loginData{}: &l},
	}
	if fp != "" {
		perms.Extensions[extKeyFingerprint] = fp
	}
	return perms, nil
}

// loginOf returns the Login recorded by the callback that authenticated the
// connection.
func loginOf(perms *ssh.Permissions) (*sftplogin.Login, bool) {
	if perms == nil {
		return nil, false
	}
	l, ok := perms.ExtraData[loginData{}].(*sftplogin.Login)
	if !ok || l == nil {
		return nil, false
	}
	if fp := perms.Extensions[extKeyFingerprint]; fp != l.KeyFingerprint {
		return nil, false
	}
	return l, true
}
