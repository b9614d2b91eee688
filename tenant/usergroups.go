package tenant

import (
	"context"
	"slices"

	"github.com/skiffhq/skiff/policy"
)

// GroupsOfUsersUncounted is GroupsOfUsers without the groups' member counts
// (MemberCount is left 0), for pages that do not show them: counting the
// live members of a group of 10,000 users under row-level security is most
// of the time of a page of users, and most pages only show the group's name.
// The same permissions apply: owners and administrators get everyone's
// group, other users only their own; the rest are absent from the map.
func (s *Service) GroupsOfUsersUncounted(ctx context.Context, accountID string, userIDs []string) (map[string]*Group, error) {
	p := PrincipalFrom(ctx)
	out := make(map[string]*Group, len(userIDs))
	if !p.InAccount(accountID) {
		return out, nil
	}
	manager, err := s.may(ctx, p, policy.GroupsObject, policy.ManageGroups)
	if err != nil {
		return nil, err
	}
	if !manager {
		userIDs = slices.DeleteFunc(slices.Clone(userIDs), func(id string) bool { return id != p.ID })
	}
	if len(userIDs) == 0 {
		return out, nil
	}
	err = s.inAccount(ctx, accountID, func(q Queryer) error {
		var rows []struct {
			UserID string `db:"user_id"`
			groupRow
		}
		err := q.SelectContext(ctx, &rows, `SELECT u.id AS user_id, g.id, g.account_id, g.name, g.builtin, g.permissions,
				g.sort_key, g.created_at, g.updated_at, 0 AS member_count
			FROM users u JOIN groups g ON g.account_id = u.account_id AND g.id = u.group_id
			WHERE u.account_id = $1 AND u.id = ANY($2::uuid[])`, accountID, uuidArray(userIDs))
		if err != nil {
			return dbError(err)
		}
		for i := range rows {
			out[rows[i].UserID] = rows[i].group()
		}
		return nil
	})
	return out, err
}
