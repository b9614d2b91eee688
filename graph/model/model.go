// Package model holds GraphQL types that have no domain type to bind to.
package model

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"

	"github.com/skiffhq/skiff/policy"
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

// FolderRights is a [FolderRight!]! list written in one pass. gqlgen
// marshals a list of enum values as it does a list of objects, with a
// goroutine and a field context per element (graphql.MarshalSliceConcurrently):
// on a page of 200 users with five shared folders each, that was some 4,000
// goroutines for a few bytes each. Rights are plain strings of the enum, as
// the generated marshaller writes them (without checking them either).
type FolderRights []policy.Right

// RightsOf returns rights as FolderRights, empty rather than nil (the field
// is non-null).
func RightsOf(rights []policy.Right) FolderRights {
	if rights == nil {
		return FolderRights{}
	}
	return rights
}

// MarshalGQL writes the list as a JSON array of strings.
func (r FolderRights) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, "[")
	for i, x := range r {
		if i > 0 {
			_, _ = io.WriteString(w, ",")
		}
		graphql.MarshalString(string(x)).MarshalGQL(w)
	}
	_, _ = io.WriteString(w, "]")
}

// UnmarshalGQL reads a list of rights (the type is output only; gqlgen's
// binding asks for both directions).
func (r *FolderRights) UnmarshalGQL(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("FolderRights: want a list, got %T", v)
	}
	out := make(FolderRights, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return fmt.Errorf("FolderRights: want strings, got %T", x)
		}
		out[i] = policy.Right(s)
	}
	*r = out
	return nil
}
