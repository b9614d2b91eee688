// Package model holds GraphQL types that have no domain type to bind to.
package model

// Node is any object with a global ID: *tenant.User, *tenant.Account, ...
type Node any

// Viewer is *UserViewer or *StaffViewer.
type Viewer any
