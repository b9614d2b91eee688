package vfs

import (
	"context"
	"strings"
)

// Rights is what a user may do inside one shared project folder. The
// presets of the product (LIST, READ, WRITE, SHARE, OWNER) are unions of
// these bits; building them is the policy's job, not this package's.
type Rights uint8

const (
	List     Rights = 1 << iota // see the folder's entries (ls, stat)
	Download                    // read files (get); also allows stat
	Upload                      // create and write files (put, resume, setstat)
	Mkdir                       // create directories
	Delete                      // remove files and empty directories
	Rename                      // rename or move entries (needed on both sides)
	Share                       // share the folder on; SFTP never uses it

	// AllRights is every right, what the folder's owner has.
	AllRights = List | Download | Upload | Mkdir | Delete | Rename | Share
)

// Has reports whether every right in want is in r.
func (r Rights) Has(want Rights) bool { return r&want == want }

// String lists the rights by name, e.g. "list|download".
func (r Rights) String() string {
	if r == 0 {
		return "none"
	}
	names := [...]string{"list", "download", "upload", "mkdir", "delete", "rename", "share"}
	var parts []string
	for i, n := range names {
		if r&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "|")
}

// SharedFolder is a project folder shared with the session's user.
type SharedFolder struct {
	// ID is the project folder's UUID; it selects the storage.
	ID string
	// Name is what the user sees under /Projects Shared With Me/. Clashes,
	// and characters a file name cannot hold, are resolved by the session.
	Name   string
	Rights Rights
	// InMyFiles also mounts the folder at /My Files/<name>, under the name
	// it has in /Projects Shared With Me/ unless an entry of the home holds
	// that name: the entry keeps it and the folder becomes "<name> (2)", or
	// the next number free. It is for the folders the user made, which are
	// theirs as much as their home; sessions of jailed users ignore it.
	InMyFiles bool
}

// Shares lists the project folders shared with the session's user and the
// rights the user has in each, directly or through groups. It is asked again
// at the first lookup after Config.SharesChanged moves on, and when the
// session's cached answer is older than Config.SharesTTL, so a share or
// rights change reaches open sessions.
type Shares interface {
	SharedFolders(ctx context.Context) ([]SharedFolder, error)
}

// Gate says whether the session may go on: the SSH layer answers no once the
// user is deleted, loses SFTP access, or the account's SFTP module expires.
// A non-nil error fails the operation with "permission denied" and ends the
// session, unless it wraps ErrGateUnavailable: then the Gate could not tell
// (its database did not answer in time), and the session keeps its last
// known rights for up to Config.Grace. A positive answer is cached for
// Config.CacheTTL. Check should return within a few seconds: give the
// database calls behind it a deadline.
type Gate interface {
	Check(ctx context.Context) error
}

// GateFunc adapts a function to Gate.
type GateFunc func(ctx context.Context) error

// Check implements Gate.
func (f GateFunc) Check(ctx context.Context) error { return f(ctx) }

// SharesFunc adapts a function to Shares.
type SharesFunc func(ctx context.Context) ([]SharedFolder, error)

// SharedFolders implements Shares.
func (f SharesFunc) SharedFolders(ctx context.Context) ([]SharedFolder, error) { return f(ctx) }
