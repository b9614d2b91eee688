package tenant

import (
	"encoding/base64"
	"encoding/json"
)

// Page asks for one page of a list in keyset order.
type Page struct {
	First int    // how many from the start (or after After); 0 means DefaultPageSize
	After string // an opaque cursor from a previous page
	// Last asks for the last rows (before Before) instead; not with First.
	Last   int
	Before string
	// Count asks for Connection.Total, the size of the whole list.
	Count bool
}

// Page sizes for lists.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

func (p Page) Limit() (int, error) {
	switch {
	case p.First == 0:
		return DefaultPageSize, nil
	case p.First < 0 || p.First > MaxPageSize:
		return 0, Invalid("first", "first must be between 1 and %d", MaxPageSize)
	}
	return p.First, nil
}

// keyCursor is the key and ID of a row that a cursor holds (see
// Keyset.Cursor), without the list and order it also names.
type keyCursor struct {
	K string `json:"k"`
	I string `json:"i"`
}

// EncodeCursor is a cursor of key and id that names no list nor order:
// every list refuses it (tests forge cursors with it).
func EncodeCursor(key, id string) string {
	b, _ := json.Marshal(keyCursor{K: key, I: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads the key and ID a cursor holds (tests check pages with
// it); ("", "") for an empty cursor.
func DecodeCursor(c string) (key, id string, err error) {
	if c == "" {
		return "", "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	var kc keyCursor
	if err == nil {
		err = json.Unmarshal(b, &kc)
	}
	if err != nil || kc.I == "" {
		return "", "", Invalid("after", "the cursor is not valid; start from the first page")
	}
	return kc.K, kc.I, nil
}

// Connection is one page of a list.
type Connection[T any] struct {
	Items       []T
	Cursors     []string
	HasNext     bool
	HasPrevious bool
	Total       int // the number of rows in the whole list, when Page.Count asked
}
