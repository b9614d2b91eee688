package tenant

import (
	"strconv"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

func Itoa(i int) string { return strconv.Itoa(i) }

// IsUUID reports whether s is a UUID in canonical form. IDs that are not are
// "not found" without a database round trip (and cannot fail a query's cast).
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// uuidArray passes only well-formed IDs, so a bad one means "absent", not an error.
func UUIDArray(ids []string) any {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if IsUUID(id) {
			out = append(out, id)
		}
	}
	return pq.Array(out)
}

func StringArray(v []string) any { return pq.Array(v) }

// result drops a half-built value when the operation failed, so callers never
// show an object that was not saved.
func Result[T any](v *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Plural formats "1 user" / "2 users".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Itoa(n) + " " + many
}
