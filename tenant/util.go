package tenant

import (
	"strconv"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

type sqlxTx = sqlx.Tx

func itoa(i int) string { return strconv.Itoa(i) }

// isUUID reports whether s is a UUID in canonical form. IDs that are not are
// "not found" without a database round trip (and cannot fail a query's cast).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// uuidArray passes only well-formed IDs, so a bad one means "absent", not an error.
func uuidArray(ids []string) any {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if isUUID(id) {
			out = append(out, id)
		}
	}
	return pq.Array(out)
}

func stringArray(v []string) any { return pq.Array(v) }

// result drops a half-built value when the operation failed, so callers never
// show an object that was not saved.
func result[T any](v *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}
