// Package model holds GraphQL types that have no domain type to bind to.
package model

import "github.com/skiffhq/skiff/tenant"

// Node is any object with a global ID: *tenant.User, *tenant.Account, ...
type Node any

// Viewer is *UserViewer or *StaffViewer.
type Viewer any

// UserSftp is a user's SFTP tab; its fields load lazily (credentials through
// a dataloader).
type UserSftp struct {
	User *tenant.User
}
