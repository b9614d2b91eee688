package sharing

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
)

// Batch reads for GraphQL's loaders: a page of folders, users or groups asks
// for a per-row field once for the whole page, in a constant number of
// statements, and gets for each row what the one-row method would answer
// (the one-row methods are these with one row). A row the principal may not
// see gets its error in the Refused map, not the whole batch.

// Refused holds, by row ID, the error each refused row of a batch gets.
type Refused map[string]error

// MyRightsInFolders is MyRightsIn for many folders: the principal's rights
// in each, by folder ID; a folder they have no right in (or that does not
// exist for them) maps to none.
func (s *Service) MyRightsInFolders(ctx context.Context, folderIDs []string) (map[string][]policy.Right, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	pol, err := s.policy()
	if err != nil {
		return nil, err
	}
	rights, err := pol.RightsInFolders(ctx, p.ID, p.AccountID, folderIDs)
	if err != nil {
		return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
	}
	return rights, nil
}

// FolderMembersOf is FolderMembers for many folders, by folder ID, in three
// statements whatever their number. Folders the principal may not see the
// members of are refused as FolderMembers refuses them.
func (s *Service) FolderMembersOf(ctx context.Context, folderIDs []string) (map[string][]*FolderMember, Refused, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, nil, err
	}
	rights, err := s.MyRightsInFolders(ctx, folderIDs)
	if err != nil {
		return nil, nil, err
	}
	out, refused := map[string][]*FolderMember{}, Refused{}
	var allowed []string
	for _, id := range folderIDs {
		switch r := rights[id]; {
		case len(r) == 0:
			refused[id] = tenant.NotFound("project folder")
		case !slices.Contains(r, policy.Share):
			refused[id] = tenant.Errorf(tenant.EForbidden, "only people who may share this folder see who has it")
		default:
			allowed = append(allowed, id)
		}
	}
	if len(allowed) == 0 {
		return out, refused, nil
	}
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var shares []struct {
			FolderID string    `db:"folder_id"`
			UserID   *string   `db:"user_id"`
			GroupID  *string   `db:"group_id"`
			Preset   string    `db:"preset"`
			SharedAt time.Time `db:"created_at"`
		}
		err := q.SelectContext(ctx, &shares, `SELECT s.folder_id, s.user_id, s.group_id, s.preset, s.created_at FROM folder_shares s
			LEFT JOIN users u ON u.id = s.user_id
			WHERE s.folder_id = ANY($1::uuid[]) AND s.account_id = skiff_account() AND (s.user_id IS NULL OR u.deleted_at IS NULL)
			ORDER BY s.created_at, s.id`, tenant.UUIDArray(allowed))
		if err != nil {
			return tenant.DBError(err)
		}
		var userIDs, groupIDs []string
		for _, sh := range shares {
			if sh.UserID != nil {
				userIDs = append(userIDs, *sh.UserID)
			} else if sh.GroupID != nil {
				groupIDs = append(groupIDs, *sh.GroupID)
			}
		}
		var users []*tenant.User
		if err := q.SelectContext(ctx, &users, `SELECT `+tenant.UserColumns+` FROM users WHERE id = ANY($1::uuid[])`, tenant.UUIDArray(userIDs)); err != nil {
			return tenant.DBError(err)
		}
		var groups []groupRow
		if err := q.SelectContext(ctx, &groups, groupSelect+` WHERE g.id = ANY($1::uuid[])`, tenant.UUIDArray(groupIDs)); err != nil {
			return tenant.DBError(err)
		}
		byUser, byGroup := map[string]*tenant.User{}, map[string]*Group{}
		for _, u := range users {
			byUser[u.ID] = u
		}
		for i := range groups {
			byGroup[groups[i].ID] = groups[i].group()
		}
		for _, id := range allowed {
			out[id] = nil
		}
		for _, sh := range shares {
			m := &FolderMember{Preset: policy.Preset(sh.Preset), SharedAt: sh.SharedAt}
			if sh.UserID != nil {
				m.User = byUser[*sh.UserID]
			} else if sh.GroupID != nil {
				m.Group = byGroup[*sh.GroupID]
			}
			if m.User != nil || m.Group != nil {
				out[sh.FolderID] = append(out[sh.FolderID], m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, refused, nil
}

// ProjectsSharedWithUsers is ProjectsSharedWith for many users of the
// principal's account, each with the same page request, by user ID: one
// statement checks the users, one reads the folders shared with any of them
// (after the cursor, in the lists' order, each once), and each user's page
// is cut from those. Users the principal may not see are refused as
// ProjectsSharedWith refuses them.
func (s *Service) ProjectsSharedWithUsers(ctx context.Context, userIDs []string, page tenant.Page) (map[string]*tenant.Connection[*SharedProject], Refused, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, nil, err
	}
	out, refused := map[string]*tenant.Connection[*SharedProject]{}, Refused{}
	var admin, askedAdmin bool
	var wanted []string
	for _, id := range userIDs {
		if id != p.ID && !askedAdmin {
			if admin, err = s.may(ctx, p, policy.FoldersObject, string(policy.Manage)); err != nil {
				return nil, nil, err
			}
			askedAdmin = true
		}
		if id != p.ID && (!admin || !tenant.IsUUID(id)) {
			refused[id] = tenant.NotFound("user")
			continue
		}
		wanted = append(wanted, id)
	}
	if len(wanted) == 0 {
		return out, refused, nil
	}
	pol, err := s.policy()
	if err != nil {
		return nil, nil, err
	}
	rights := make(map[string]map[string][]policy.Right, len(wanted))
	shared := map[string]bool{} // every folder shared with any of the users
	for _, id := range wanted {
		r, err := pol.FolderRights(ctx, id, p.AccountID)
		if err != nil {
			return nil, nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
		}
		rights[id] = r
		for folderID := range r {
			shared[folderID] = true
		}
	}
	// The shared folders after the cursor, in the lists' order, once each
	// however many of the users have them; each user's page is then cut
	// from those in Go, keeping the database's order.
	var folders []*ProjectFolder
	limit, afterKey, afterID, pageErr := tenant.KeyKeyset(page)
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		found, err := existing(ctx, q, "users", wanted)
		if err != nil {
			return err
		}
		for _, id := range wanted {
			switch {
			case !found[id]:
				refused[id] = tenant.NotFound("user")
			case pageErr != nil: // as ProjectsSharedWith: a user not found first
				refused[id] = pageErr
			}
		}
		if pageErr != nil {
			return nil
		}
		return tenant.DBError(q.SelectContext(ctx, &folders, `SELECT `+folderColumns+` FROM project_folders
			WHERE account_id = skiff_account() AND deleted_at IS NULL AND id = ANY($1::uuid[])
			  AND ($2 = '' OR (lower(name), id) > ($3, $2::uuid))
			ORDER BY lower(name), id`, tenant.UUIDArray(sortedKeys(shared)), afterID, afterKey))
	})
	if err != nil {
		return nil, nil, err
	}
	for _, id := range wanted {
		if refused[id] != nil {
			continue
		}
		var mine []*ProjectFolder
		for _, f := range folders {
			if _, ok := rights[id][f.ID]; ok {
				if mine = append(mine, f); len(mine) > limit {
					break
				}
			}
		}
		page := tenant.KeyPage(mine, limit, afterID != "", func(f *ProjectFolder) (string, string) { return strings.ToLower(f.Name), f.ID })
		conn := &tenant.Connection[*SharedProject]{Cursors: page.Cursors, HasNext: page.HasNext, HasPrevious: page.HasPrevious}
		for _, f := range page.Items {
			r := rights[id][f.ID]
			conn.Items = append(conn.Items, &SharedProject{Folder: f, Preset: presetOf(r), Rights: r})
		}
		out[id] = conn
	}
	return out, refused, nil
}

// GroupMembersOf is GroupMembers for many groups, each with the same page
// request, by group ID: one statement checks the groups, one pages every
// group's members at once (numbered per group). Owners and administrators
// only; a group not in the account is refused as not found.
func (s *Service) GroupMembersOf(ctx context.Context, groupIDs []string, page tenant.Page) (map[string]*tenant.Connection[*tenant.User], Refused, error) {
	p, err := s.RequireGroupManager(ctx)
	if err != nil {
		return nil, nil, err
	}
	limit, afterKey, afterID, err := tenant.KeyKeyset(page)
	if err != nil {
		return nil, nil, err
	}
	out, refused := map[string]*tenant.Connection[*tenant.User]{}, Refused{}
	var rows []struct {
		GroupID string `db:"group_id"`
		tenant.User
	}
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		found, err := existing(ctx, q, "groups", groupIDs)
		if err != nil {
			return err
		}
		var groups []string
		for _, id := range groupIDs {
			if found[id] {
				groups = append(groups, id)
			} else {
				refused[id] = tenant.NotFound("group")
			}
		}
		return tenant.DBError(q.SelectContext(ctx, &rows, `SELECT group_id, `+tenant.UserColumns+` FROM (
				SELECT u.*, row_number() OVER (PARTITION BY u.group_id ORDER BY lower(u.name), u.id) AS n
				FROM users u
				WHERE u.account_id = skiff_account() AND u.group_id = ANY($1::uuid[]) AND u.deleted_at IS NULL
				  AND ($2 = '' OR (lower(u.name), u.id) > ($3, $2::uuid))) numbered
			WHERE n <= $4 ORDER BY group_id, n`,
			tenant.UUIDArray(groups), afterID, afterKey, limit+1))
	})
	if err != nil {
		return nil, nil, err
	}
	members := map[string][]*tenant.User{}
	for i := range rows {
		members[rows[i].GroupID] = append(members[rows[i].GroupID], &rows[i].User)
	}
	for _, id := range groupIDs {
		if refused[id] == nil {
			out[id] = tenant.KeyPage(members[id], limit, afterID != "", func(u *tenant.User) (string, string) { return strings.ToLower(u.Name), u.ID })
		}
	}
	return out, refused, nil
}

// existing returns which of ids are rows of table (a constant) in the
// transaction's account.
func existing(ctx context.Context, q tenant.Queryer, table string, ids []string) (map[string]bool, error) {
	var found []string
	if err := q.SelectContext(ctx, &found, `SELECT id FROM `+table+` WHERE id = ANY($1::uuid[]) AND account_id = skiff_account()`,
		tenant.UUIDArray(ids)); err != nil {
		return nil, tenant.DBError(err)
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// one returns the answer a batch gave for one row.
func one[V any](id string, out map[string]V, refused Refused, err error) (V, error) {
	var zero V
	if err != nil {
		return zero, err
	}
	if err := refused[id]; err != nil {
		return zero, err
	}
	return out[id], nil
}
