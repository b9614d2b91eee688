// Package model holds GraphQL types that have no domain type to bind to.
package model

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/skiffhq/skiff/tenant"
)

// Node is any object with a global ID: *tenant.User, *tenant.Account, ...
type Node any

// Viewer is *UserViewer or *StaffViewer.
type Viewer any

// UserSftp is a user's SFTP tab; its fields load lazily (credentials through
// a dataloader).
type UserSftp struct {
	User *tenant.User
}

// JSON is a JSON value sent as is (the JSON scalar): the audit trail's
// before and after states, which are objects, not strings holding JSON.
type JSON json.RawMessage

// MarshalGQL writes the value itself.
func (j JSON) MarshalGQL(w io.Writer) {
	if len(j) == 0 {
		_, _ = io.WriteString(w, "null")
		return
	}
	_, _ = w.Write(j)
}

// UnmarshalGQL takes any JSON value.
func (j *JSON) UnmarshalGQL(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("JSON: %w", err)
	}
	*j = b
	return nil
}
