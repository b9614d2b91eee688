package sharing

import (
	"context"
	"strings"

	"github.com/skiffhq/skiff/tenant"
)

// GroupIDsByNameTx maps the lower-cased names of the account's groups to
// their IDs, for a bulk import that names groups (names are unique in an
// account, ignoring case).
func GroupIDsByNameTx(ctx context.Context, q tenant.Queryer, accountID string) (map[string]string, error) {
	var rows []struct {
		ID   string `db:"id"`
		Name string `db:"name"`
	}
	if err := q.SelectContext(ctx, &rows, `SELECT id, name FROM groups WHERE account_id = $1`, accountID); err != nil {
		return nil, tenant.DBError(err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[strings.ToLower(r.Name)] = r.ID
	}
	return out, nil
}
