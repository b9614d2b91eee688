package sharing

import (
	"context"
	"strings"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
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

// SetNewUserGroupTx puts a user just created in the caller's transaction in
// the group groupID of accountID (found by GroupIDsByNameTx), with an audit
// row. A bulk import calls it before turning SFTP on for the user.
func (s *Service) SetNewUserGroupTx(ctx context.Context, q tenant.Queryer, u *tenant.User, groupID string) error {
	to, err := getGroup(ctx, q, groupID, false)
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `UPDATE users SET group_id = $2, updated_at = $3 WHERE id = $1`, u.ID, to.ID, s.Time()); err != nil {
		return tenant.DBError(err)
	}
	return audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "user.group_changed", TargetKind: "User", TargetID: u.ID,
		After: map[string]any{"group": to.Name, "groupId": to.ID}})
}

// AfterNewUserGroups reloads the account's policy once a transaction that
// called SetNewUserGroupTx has committed (err nil).
func (s *Service) AfterNewUserGroups(accountID string, err error) { s.policyChanged(accountID, err) }
