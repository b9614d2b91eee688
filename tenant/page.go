package tenant

import (
	"encoding/base64"
	"encoding/json"
	"time"
)

// Page asks for one page of a list in keyset order.
type Page struct {
	First int    // how many from the start (or after After); 0 means DefaultPageSize
	After string // an opaque cursor from a previous page
	// Last asks for the last rows (before Before) instead; not with First.
	// Only lists read with a Keyset (Sorts.NewKeyset) take Last and Before.
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

// keyCursor is the position of a row in (sort key, id) order.
type keyCursor struct {
	K string `json:"k"`
	I string `json:"i"`
}

func EncodeCursor(key, id string) string {
	b, _ := json.Marshal(keyCursor{K: key, I: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor returns ("", "") for an empty cursor.
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

// keyKeyset reads a page request for a list in (text key, id) order: the
// page size and the position to continue after ("" for the start).
func KeyKeyset(p Page) (limit int, afterKey, afterID string, err error) {
	if limit, err = p.Limit(); err != nil {
		return 0, "", "", err
	}
	if afterKey, afterID, err = DecodeCursor(p.After); err != nil {
		return 0, "", "", err
	}
	if afterID != "" && !IsUUID(afterID) {
		return 0, "", "", Invalid("after", "the cursor is not valid; start from the first page")
	}
	return limit, afterKey, afterID, nil
}

// keyPage makes a page of a list in (text key, id) order from rows fetched
// with LIMIT limit+1: the extra row only tells that there is a next page.
func KeyPage[T any](rows []T, limit int, hasPrevious bool, key func(T) (string, string)) *Connection[T] {
	return MakePage(rows, limit, hasPrevious, func(r T) string { return EncodeCursor(key(r)) })
}

// timePage is keyPage for a list in (time, id) order.
func TimePage[T any](rows []T, limit int, hasPrevious bool, key func(T) (time.Time, string)) *Connection[T] {
	return MakePage(rows, limit, hasPrevious, func(r T) string { return EncodeTimeCursor(key(r)) })
}

func MakePage[T any](rows []T, limit int, hasPrevious bool, cursor func(T) string) *Connection[T] {
	conn := &Connection[T]{HasPrevious: hasPrevious}
	if len(rows) > limit {
		rows, conn.HasNext = rows[:limit], true
	}
	conn.Items = rows
	for _, r := range rows {
		conn.Cursors = append(conn.Cursors, cursor(r))
	}
	return conn
}

// encodeTimeCursor is the cursor of a row in a list in (time, id) order.
func EncodeTimeCursor(t time.Time, id string) string {
	return EncodeCursor(t.UTC().Format(time.RFC3339Nano), id)
}

// timeKeyset reads a page request for a list in (time, id) order: the page
// size and the position to continue after (a zero time and "" for the start).
func TimeKeyset(p Page) (limit int, after time.Time, afterID string, err error) {
	if limit, err = p.Limit(); err != nil {
		return 0, time.Time{}, "", err
	}
	key, id, err := DecodeCursor(p.After)
	if err != nil || id == "" {
		return limit, time.Time{}, "", err
	}
	t, err := time.Parse(time.RFC3339Nano, key)
	if err != nil || !IsUUID(id) {
		return 0, time.Time{}, "", Invalid("after", "the cursor is not valid; start from the first page")
	}
	return limit, t, id, nil
}
