package tenant

import (
	"context"
	"sync"
	"time"
)

// Service applies the product's rules to accounts, users, contacts, staff,
// the SFTP module and everything hanging off them. Transports (GraphQL, SFTP,
// the CLI) call it; it never knows about them.
type Service struct {
	DB  *DB
	Now func() time.Time

	// TokenTTL is how long a bearer token from Login stays valid.
	TokenTTL time.Duration
	// SFTP describes the deployment's SFTP endpoint and module defaults.
	SFTP SFTPConfig
	// Sessions ends a user's live SFTP sessions on this node when their access
	// is withdrawn. Other nodes notice on the session's next operation. May be nil.
	Sessions SessionEnder
	// DedicatedIPs is the deployment's pool of dedicated IPs; see dedicatedip.go.
	DedicatedIPs DedicatedIPConfig
	// Policy answers "may this user do this?" (a *policy.Enforcer). Set it
	// before first use; left nil, the service makes a non-listening one.
	Policy     Policy
	policyOnce sync.Once
	policyErr  error
}

// SFTPConfig is what the service needs to know about the SFTP endpoint and
// the module's commercial defaults.
type SFTPConfig struct {
	Host          string // public host name users connect to
	Port          int
	TrialDays     int // length of a trial; 14 by default
	TrialLicences int // licences during a trial
}

// SessionEnder ends SFTP sessions on this node; the SSH server implements it.
type SessionEnder interface {
	// Disconnect ends one user's sessions.
	Disconnect(accountID, userID string)
	// DisconnectAccount ends the sessions of every user of the account.
	DisconnectAccount(accountID string)
}

// NewService returns a service with the product's defaults filled in.
func NewService(db *DB) *Service {
	return &Service{
		DB:       db,
		Now:      time.Now,
		TokenTTL: 30 * 24 * time.Hour,
		SFTP:     SFTPConfig{Host: "localhost", Port: 2022, TrialDays: 14, TrialLicences: 5},
	}
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) endSessions(accountID, userID string) {
	if s.Sessions != nil {
		s.Sessions.Disconnect(accountID, userID)
	}
}

func (s *Service) endAccountSessions(accountID string) {
	if s.Sessions != nil {
		s.Sessions.DisconnectAccount(accountID)
	}
}

// inAccount runs fn in a transaction scoped to accountID.
func (s *Service) inAccount(ctx context.Context, accountID string, fn func(q Queryer) error) error {
	return s.DB.InAccount(ctx, accountID, func(tx *sqlxTx) error { return fn(tx) })
}
