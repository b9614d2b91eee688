package tenant

import (
	"encoding/base64"
	"encoding/json"
)

// Page asks for one page of a list in keyset order.
type Page struct {
	First int    // how many; 0 means DefaultPageSize
	After string // an opaque cursor from a previous page
}

// Page sizes for lists.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

func (p Page) limit() (int, error) {
	switch {
	case p.First == 0:
		return DefaultPageSize, nil
	case p.First < 0 || p.First > MaxPageSize:
		return 0, Invalid("first", "first must be between 1 and %d", MaxPageSize)
	}
	return p.First, nil
}

// keyCursor is the position of a row in (sort key, id) order.
type keyCursor struct {
	K string `json:"k"`
	I string `json:"i"`
}

func encodeCursor(key, id string) string {
	b, _ := json.Marshal(keyCursor{K: key, I: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns ("", "") for an empty cursor.
func decodeCursor(c string) (key, id string, err error) {
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
}
