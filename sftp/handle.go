package sftp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"golang.org/x/crypto/ssh"
)

// conn is one client connection as the server's registry sees it. Its
// fields are guarded by Server.mu.
type conn struct {
	nc            net.Conn
	authenticated bool
	login         *sftplogin.Login

	// dest is the destination the connection was routed by (the socket's
	// local address, or a trusted PROXY header's destination).
	dest netip.Addr
	// routedTo is the account whose dedicated IP dest was when the
	// handshake began, or "".
	routedTo string
	// dedicated is set when the connection logged in to its account's
	// dedicated IP: it ends when dest no longer leads to that account.
	dedicated bool
	// live is what the list of live sessions shows of it once logged in.
	live liveInfo
	// endReason, when set, is why the server ended the connection.
	endReason string
	// session is the connection's count against the logged-in connection
	// caps, taken by the callback that completes its login. Only the
	// connection's goroutine touches it (the handshake runs there), until
	// untrack releases it.
	session *vfs.Holder
	// sess is the SFTP session once open; log is the connection's logger
	// (with its session ID and, once logged in, the user).
	sess Session
	log  *slog.Logger
	// keyRefusal is the last refused public key of a known user; the
	// activity log records it if no login succeeds (clients offer keys
	// in turn, and the refusals of the ones before the right key are no
	// failed login).
	keyRefusal *loginRefusal
}

// close ends the connection; the SSH layer and every channel fail at once.
func (c *conn) close() { c.nc.Close() }

// handle runs one connection from accept to close.
func (s *Server) handle(ctx context.Context, raw net.Conn) {
	started := time.Now()
	sessionID := newSessionID()
	ctx = context.WithValue(ctx, sessionIDKey{}, sessionID)
	c := &conn{nc: raw}
	if !s.track(c) {
		raw.Close()
		return
	}
	defer s.untrack(c)
	var nc *netConn
	defer func() {
		// Through the netConn once there is one: it closes without
		// losing the last replies (netConn.Close).
		if nc != nil {
			nc.Close()
			nc.waitSent()
		} else {
			raw.Close()
		}
	}()

	peer := addrOf(raw.RemoteAddr())
	peerAttr := slog.String("peer", raw.RemoteAddr().String())
	sessionAttr := slog.String("session", sessionID)
	if err := raw.SetDeadline(started.Add(s.cfg.Limits.HandshakeTimeout)); err != nil {
		return
	}

	rt := route{dest: addrOf(raw.LocalAddr()), remote: peer}
	if s.trusted(peer) {
		nc = newNetConn(raw, trustedReadBuffer)
		var err error
		if rt, err = nc.readProxyHeader(rt, s.cfg.RequireProxyHeader); err != nil {
			if peerGone(err) { // a health check that connects and leaves
				s.cfg.Metrics.handshakeFailed(logHandshakeError(s.log.With(sessionAttr, peerAttr), err))
				return
			}
			s.cfg.Metrics.handshakeFailed("proxy_refused")
			s.log.Warn("sftp connection refused", sessionAttr, peerAttr, "reason", err.Error())
			return
		}
	} else {
		nc = newNetConn(raw, untrustedReadBuffer)
		nc.refuseProxy.Store(true)
	}
	s.mu.Lock()
	c.nc = nc // Disconnect and shutdown close it without losing the last replies
	s.mu.Unlock()
	// One With for what every line of the connection names: a handler
	// formats these attributes when With is called, for each connection.
	var log *slog.Logger
	if rt.viaProxy {
		log = s.log.With(sessionAttr, peerAttr, "remote", rt.remote.String(), "dest", rt.dest.String())
	} else {
		log = s.log.With(sessionAttr, peerAttr, "dest", rt.dest.String())
	}

	if !s.admitAddress(rt.remote) {
		s.capLog.log(log, "sftp connection refused: per-address connection limit reached",
			"limit", s.cfg.Limits.MaxConnectionsPerAddress)
		return
	}
	defer s.releaseAddress(rt.remote)

	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	authCtx, cancelAuth := context.WithDeadline(connCtx, started.Add(s.cfg.Limits.HandshakeTimeout))
	defer cancelAuth()

	cfg, err := s.serverConfig(authCtx, c, rt, log)
	if err != nil {
		log.Error("sftp connection refused: no host keys", "err", err)
		return
	}
	// The host keys were just chosen by the same copy of the dedicated IPs.
	s.noteRoute(c, rt.dest)
	sconn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	cancelAuth()
	if err != nil {
		s.cfg.Metrics.handshakeFailed(logHandshakeError(log, err))
		s.recordRefusal(ctx, c.keyRefusal)
		return
	}
	defer sconn.Close()
	nc.loggedIn() // closing waits for the client's side; writes are gathered

	login, ok := loginOf(sconn.Permissions)
	if !ok {
		// Unreachable unless an auth path forgot its Login: fail closed.
		log.Error("sftp connection without a login after authentication")
		return
	}
	log = log.With("login", login.Login, "account", login.AccountID, "user", login.UserID)
	// Set before the connection is filed as logged in, which publishes it.
	c.live = newLiveInfo(started, rt.remote, sconn.ClientVersion())
	if ok, reason := s.authenticated(c, login, log); !ok {
		if reason == "" {
			reason = "server shutting down"
		}
		log.Info("sftp connection closed", "reason", reason)
		return
	}
	// A socket refuses a deadline once closed: a client that hung up as
	// soon as it was in. It has logged in all the same, and that is
	// recorded below before the connection ends.
	idleErr := nc.startIdleTimer(s.cfg.Limits.IdleTimeout)
	if login.KeyFingerprint != "" {
		if rec, ok := s.cfg.Directory.(KeyUseRecorder); ok {
			if err := rec.MarkKeyUsed(connCtx, login); err != nil {
				log.Error("sftp: recording key use failed", "err", err)
			}
		}
	} else if rec, ok := s.cfg.Directory.(LoginRecorder); ok {
		// Off the login's path: the session does not wait for it, and
		// the connection ending does not cancel it (Shutdown waits).
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := rec.MarkLogin(context.WithoutCancel(connCtx), login); err != nil {
				log.Error("sftp: recording the login failed", "err", err)
			}
		}()
	}
	var algs ssh.NegotiatedAlgorithms
	if m, ok := sconn.Conn.(ssh.AlgorithmsConnMetadata); ok {
		algs = m.Algorithms()
	}
	log.Info("sftp login", "method", sconn.Permissions.Extensions[extMethod], "key", login.KeyFingerprint,
		"client", string(sconn.ClientVersion()), "kex", algs.KeyExchange, "cipher", algs.Write.Cipher)

	s.recordLogin(ctx, login)
	// ended logs and records the end of the logged-in connection.
	ended := func(reason string) {
		log.Info("sftp connection closed", "duration", time.Since(started).Round(time.Millisecond).Seconds(), "reason", reason)
		s.recordLogout(ctx, login, time.Since(started), reason)
	}
	if idleErr != nil {
		ended("client closed")
		return
	}
	sess, err := s.cfg.Sessions.Open(connCtx, login)
	if err != nil {
		log.Error("sftp session could not start", "err", err)
		s.recordLogout(ctx, login, time.Since(started), "the session could not start")
		return
	}
	if !s.opened(c, sess) {
		sess.Close()
		ended("server shutting down")
		return
	}
	s.serveChannels(chans, reqs, sess, s.channels.For(login.AccountID, login.UserID), log, func() { sconn.Close() })
	if err := sess.Close(); err != nil {
		log.Warn("sftp session close", "err", err)
	}
	reason := closeReason(sconn.Wait())
	if r := s.endReason(c); r != "" {
		reason = r
	}
	ended(reason)
}

// logHandshakeError logs why a connection ended before authentication,
// and returns the reason as HandshakeFailureReasons name it.
func logHandshakeError(log *slog.Logger, err error) string {
	var authErr *ssh.ServerAuthError
	switch {
	case errors.Is(err, errUntrustedProxyHeader):
		log.Warn("sftp connection refused", "reason", err.Error())
		return "proxy_refused"
	case errors.As(err, &authErr):
		// Each failed attempt was already logged with its reason.
		log.Info("sftp authentication failed, connection closed")
		return "auth_failed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Info("sftp handshake timed out")
		return "timeout"
	case peerGone(err):
		// A load balancer's TCP health check connects and resets.
		log.Debug("sftp client left during handshake")
		return "client_left"
	default:
		log.Info("sftp handshake failed", "err", err)
		return "other"
	}
}

// closeReason names why an authenticated connection ended, for the log.
func closeReason(err error) string {
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return "client closed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "idle timeout"
	case errors.Is(err, net.ErrClosed):
		return "closed by server"
	default:
		return err.Error()
	}
}

// serveChannels accepts session channels until the connection ends, then
// waits for them all. end closes the connection. Once the connection has
// ended, a session that can be told so (a vfs.Session) hears it: a request
// still at work only for its answer (check-file hashing a large file) has
// nobody left to answer. It also refuses the
// connection's global requests (keepalives, port forwarding), on the same
// goroutine rather than one more per connection.
func (s *Server) serveChannels(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, sess Session, open *vfs.Holder, log *slog.Logger, end func()) {
	var wg sync.WaitGroup
	noMoreSessions := false
	for chans != nil {
		var nch ssh.NewChannel
		select {
		case req, ok := <-reqs:
			switch {
			case !ok:
				reqs = nil // the connection is ending; chans closes too
			case req.Type == "no-more-sessions@openssh.com":
				// OpenSSH's ssh sends it once its session is open, so that
				// nobody abusing the running client can open one more;
				// sshd then refuses session channels, and so do we.
				noMoreSessions = true
			}
			if ok && req.WantReply {
				req.Reply(false, nil)
			}
			continue
		case c, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			nch = c
		}
		if nch.ChannelType() != "session" {
			log.Info("sftp channel refused", "type", nch.ChannelType())
			nch.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		if noMoreSessions {
			log.Warn("sftp channel refused: the client sent no-more-sessions@openssh.com")
			nch.Reject(ssh.Prohibited, "no more sessions on this connection")
			continue
		}
		if s.isClosing() {
			log.Info("sftp channel refused: server shutting down")
			nch.Reject(ssh.ResourceShortage, shuttingDownMessage)
			continue
		}
		if err := open.Acquire(); err != nil {
			s.cfg.Metrics.refused("channels", "", err)
			s.capLog.log(log, "sftp channel refused", "reason", err.Error())
			nch.Reject(ssh.ResourceShortage, err.Error())
			continue
		}
		ch, reqs, err := nch.Accept()
		if err != nil {
			open.Release()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer open.Release()
			serveChannel(ch, reqs, sess, log, end)
		}()
	}
	if l, ok := sess.(interface{ ConnectionLost() }); ok {
		l.ConnectionLost()
	}
	wg.Wait()
}

// serveChannel answers a session channel's requests: the one "sftp"
// subsystem request starts SFTP, or one "exec" request runs a checksum
// command (exec.go); everything else (shell, pty-req, env, x11-req,
// auth-agent-req@openssh.com, a second subsystem or command…) is refused.
// When the session is denied (access withdrawn), end closes the connection:
// otherwise a client that keeps it alive (keepalives count as traffic)
// would hold a connection slot for a user who may no longer connect.
func serveChannel(ch ssh.Channel, reqs <-chan *ssh.Request, sess Session, log *slog.Logger, end func()) {
	var served chan struct{}
	// gone ends a checksum command once the channel or connection is.
	gone, cancel := context.WithCancel(context.Background())
	defer cancel()
	for req := range reqs {
		if req.Type == "exec" && served == nil {
			if line, ok := execCommand(req.Payload); ok {
				req.Reply(true, nil)
				served = make(chan struct{})
				go serveExec(gone, ch, sess, line, log, end, served)
				continue
			}
		}
		if req.Type == "subsystem" && served == nil && subsystemName(req.Payload) == "sftp" {
			req.Reply(true, nil)
			served = make(chan struct{})
			go func() {
				defer close(served)
				status := uint32(0)
				err := sess.Serve(exitChannel{ch})
				if err != nil && !errors.Is(err, io.EOF) {
					log.Debug("sftp subsystem ended", "err", err)
					status = 1
				}
				// A Session that did not close the channel itself.
				exitChannel{ch}.CloseStatus(status)
				if errors.Is(err, vfs.ErrDenied) {
					end()
				}
			}()
			continue
		}
		log.Debug("sftp channel request refused", "type", req.Type)
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
	cancel()
	if served != nil {
		<-served
	}
	ch.Close()
}

// exitChannel is a session channel whose end tells the client its
// exit-status first, as sshd does: scp and `ssh -s` exit with it.
type exitChannel struct{ ssh.Channel }

// CloseStatus sends exit-status then closes the channel. The status is
// best effort (the client may be gone or the channel closed already).
func (c exitChannel) CloseStatus(status uint32) error {
	exit := struct{ Status uint32 }{status}
	_, _ = c.SendRequest("exit-status", false, ssh.Marshal(&exit))
	return c.Close()
}

// subsystemName decodes a "subsystem" request's payload (RFC 4254 §6.5).
func subsystemName(payload []byte) string {
	var msg struct{ Name string }
	if err := ssh.Unmarshal(payload, &msg); err != nil {
		return ""
	}
	return msg.Name
}
