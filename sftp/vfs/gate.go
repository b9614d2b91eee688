package vfs

import (
	"context"
	"errors"
	"time"
)

// DefaultGrace is how long a session keeps its last known rights while its
// Gate cannot answer, when Config.Grace is zero.
const DefaultGrace = 60 * time.Second

// ErrGateUnavailable is wrapped by a Gate's error when it could not tell
// whether the session may go on (its database is down or too slow): "could
// not check", as opposed to "access withdrawn".
var ErrGateUnavailable = errors.New("vfs: access could not be checked")

// Recheck asks the Gate now, whatever its cached answer, e.g. when the SSH
// layer hears that the user's access may have changed. A refusal ends the
// session at once, even an idle one: every channel closes and Serve returns
// an error wrapping ErrDenied. While the Gate is unavailable the session
// goes on within its grace (see Gate). It returns the refusal, if any.
func (s *Session) Recheck(ctx context.Context) error {
	err := s.gate.recheck(ctx)
	if err != nil {
		s.endDenied(err)
	}
	return err
}

// endDenied ends the session for a refusal found outside a request: there
// is no request to answer "permission denied" to, so the channels close
// (Serve reports the refusal).
func (s *Session) endDenied(err error) {
	if s.deny(err) {
		s.log.Info("sftp: session ended by gate", "reason", err)
	}
	s.terminate()
}
