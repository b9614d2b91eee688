package sftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
	"golang.org/x/crypto/ssh"
)

// drainTick is how often a shutting-down server looks for connections
// whose transfers have ended, to close them.
const drainTick = 100 * time.Millisecond

// shuttingDownMessage is what a client that tries to log in, or to open a
// channel, hears while the server shuts down.
const shuttingDownMessage = "Skiff is shutting down for maintenance; connect again in a moment (you will reach another server).\r\n"

// Busy is implemented by a Session that can tell whether it has a transfer
// under way (vfs.Session does). A Session without it counts as busy until
// its connection ends.
type Busy interface {
	Busy() bool
}

// TransferLister is implemented by a Session that can list its open files,
// so a transfer cut at the shutdown deadline is logged with its path and
// size.
type TransferLister interface {
	Transfers() []vfs.Transfer
}

// Shutdown stops accepting connections and drains the server: connections
// not yet logged in and sessions with no transfer under way are closed at
// once, new logins and channels are refused with a message, and sessions
// with a file open are closed as soon as their last file closes. When ctx
// ends first, the transfers still open are logged (user, path, bytes) and
// every connection is closed; Shutdown then waits for the handlers and
// returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	lns := s.listeners
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	s.closeIdle()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(drainTick)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-tick.C:
			s.closeIdle()
		case <-ctx.Done():
			s.logCutTransfers()
			s.closeNow()
			<-done
			return ctx.Err()
		}
	}
}

// closeIdle closes the connections that hold no transfer: those still in
// their handshake and logged-in ones whose session has no file open.
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if !c.authenticated || !c.busy() {
			if c.authenticated && c.endReason == "" {
				c.endReason = "server shutting down"
			}
			c.close()
		}
	}
}

// busy reports whether the connection's session has a transfer under way.
// A logged-in connection whose session is not open yet is not busy.
func (c *conn) busy() bool {
	if c.sess == nil {
		return false
	}
	if b, ok := c.sess.(Busy); ok {
		return b.Busy()
	}
	return true
}

// logCutTransfers logs, at the shutdown deadline, each transfer still
// under way: it is about to be cut (an upload is discarded).
func (s *Server) logCutTransfers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if !c.authenticated || c.sess == nil {
			continue
		}
		c.endReason = "shutdown grace period over"
		tl, ok := c.sess.(TransferLister)
		if !ok {
			continue
		}
		for _, t := range tl.Transfers() {
			c.log.Warn("sftp transfer cut at shutdown", "path", t.Path, "upload", t.Upload, "bytes", t.Bytes)
		}
	}
}

// opened records the connection's session, once it is open, so Shutdown
// can tell whether it is busy. It reports false when the server is
// shutting down: the session is then not served.
func (s *Server) opened(c *conn, sess Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.sess = sess
	return !s.closing
}

// newSessionID names one connection in every log line about it.
func newSessionID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type sessionIDKey struct{}

// SessionID is the ID of the connection whose context ctx is (the one
// Sessions.Open receives), "" outside one. Sessions put it on their log
// lines, as the server does on its own.
func SessionID(ctx context.Context) string {
	id, _ := ctx.Value(sessionIDKey{}).(string)
	return id
}

// shuttingDown is the error an authentication callback returns while the
// server shuts down: the client shows the message, then "permission denied".
func shuttingDown() error {
	return &ssh.BannerError{Err: errDenied, Message: shuttingDownMessage}
}
