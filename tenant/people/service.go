package people

import (
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/purge"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// Service applies the rules of an account's people: users and contacts,
// invitations and password resets, and logging in to the API.
type Service struct {
	*tenant.Base
	// TokenTTL is how long a bearer token from Login stays valid, and how
	// long a session with refresh tokens lasts unless refreshed.
	TokenTTL time.Duration
	// AccessTokenTTL is how long an access token of a session with refresh
	// tokens stays valid; 0 means DefaultAccessTokenTTL.
	AccessTokenTTL time.Duration
	// SFTP turns users' SFTP access on and off as part of creating,
	// changing and restoring them.
	SFTP *sftpaccess.Service
	// Sharing answers permission questions (managing contacts).
	Sharing *sharing.Service
	// Files schedules and cancels the purge of a deleted user's home.
	Files *purge.Service
}

// DefaultTokenTTL is how long a bearer token lasts unless configured.
const DefaultTokenTTL = 30 * 24 * time.Hour
