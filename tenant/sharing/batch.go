package sharing

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

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

// TooManyShares is FolderMembersOf's error for folders shared more than Max
// times in all.
type TooManyShares struct{ Max int }

func (e *TooManyShares) Error() string {
	return fmt.Sprintf("the folders are shared more than %d times", e.Max)
}

// shareLimit is the LIMIT that reads one share more than maxShares (NULL,
// no limit, without one).
func shareLimit(maxShares int) *int {
	if maxShares <= 0 {
		return nil
	}
	n := maxShares + 1
	return &n
}

// FolderMembersOf is FolderMembers for many folders, by folder ID, in three
// statements whatever their number. Folders the principal may not see the
// members of are refused as FolderMembers refuses them. With maxShares > 0,
// folders shared more than maxShares times in all are not read: the error
// is a *TooManyShares.
func (s *Service) FolderMembersOf(ctx context.Context, folderIDs []string, maxShares int) (map[string][]*FolderMember, Refused, error) {
	p, allowed, refused, err := s.membersVisible(ctx, folderIDs)
	if err != nil || len(allowed) == 0 {
		return map[string][]*FolderMember{}, refused, err
	}
	out := map[string][]*FolderMember{}
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var shares []*shareRow
		err := q.SelectContext(ctx, &shares, `SELECT s.id, s.folder_id, s.user_id, s.group_id, s.preset, s.created_at FROM folder_shares s
			LEFT JOIN users u ON u.id = s.user_id
			WHERE s.folder_id = ANY($1::uuid[]) AND s.account_id = skiff_account() AND (s.user_id IS NULL OR u.deleted_at IS NULL)
			ORDER BY s.created_at, s.id LIMIT $2`, tenant.UUIDArray(allowed), shareLimit(maxShares))
		if err != nil {
			return tenant.DBError(err)
		}
		if maxShares > 0 && len(shares) > maxShares {
			return &TooManyShares{Max: maxShares}
		}
		members, err := shareMembers(ctx, q, shares)
		if err != nil {
			return err
		}
		for _, id := range allowed {
			out[id] = nil
		}
		for i, sh := range shares {
			if m := members[i]; m != nil {
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

// membersVisible splits folderIDs into the folders whose shares the
// principal may see (they may share the folder: SHARE, which owners and
// administrators have in every folder) and the others, refused: NOT_FOUND
// for a folder they have no right in, FORBIDDEN for one they may not share.
func (s *Service) membersVisible(ctx context.Context, folderIDs []string) (*tenant.Principal, []string, Refused, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	rights, err := s.MyRightsInFolders(ctx, folderIDs)
	if err != nil {
		return nil, nil, nil, err
	}
	refused := Refused{}
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
	return p, allowed, refused, nil
}

// shareRow is a row of folder_shares, as the members' reads scan it.
type shareRow struct {
	ID       string    `db:"id"`
	FolderID string    `db:"folder_id"`
	UserID   *string   `db:"user_id"`
	GroupID  *string   `db:"group_id"`
	Preset   string    `db:"preset"`
	SharedAt time.Time `db:"created_at"`
}

// shareMembers reads the users and groups of shares, in two statements
// whatever their number, and returns each share's member (nil for one
// whose user or group the transaction does not see).
func shareMembers(ctx context.Context, q tenant.Queryer, shares []*shareRow) ([]*FolderMember, error) {
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
		return nil, tenant.DBError(err)
	}
	var groups []groupRow
	if err := q.SelectContext(ctx, &groups, groupSelect+` WHERE g.id = ANY($1::uuid[])`, tenant.UUIDArray(groupIDs)); err != nil {
		return nil, tenant.DBError(err)
	}
	byUser, byGroup := map[string]*tenant.User{}, map[string]*Group{}
	for _, u := range users {
		byUser[u.ID] = u
	}
	for i := range groups {
		byGroup[groups[i].ID] = groups[i].group()
	}
	out := make([]*FolderMember, len(shares))
	for i, sh := range shares {
		m := &FolderMember{Preset: policy.Preset(sh.Preset), SharedAt: sh.SharedAt}
		if sh.UserID != nil {
			m.User = byUser[*sh.UserID]
		} else if sh.GroupID != nil {
			m.Group = byGroup[*sh.GroupID]
		}
		if m.User != nil || m.Group != nil {
			out[i] = m
		}
	}
	return out, nil
}

// shareSorts is the one order of FolderSharesOf: oldest share first. A
// share keeps its place when its preset changes (created_at is when it was
// made), so a cursor stays valid; the index of migration 00148 reads it.
var shareSorts = &tenant.Sorts[*shareRow]{
	List: "shares",
	Keys: []tenant.SortKey[*shareRow]{
		{Field: "SHARED_AT", Expr: "created_at", Type: "timestamptz", Of: func(r *shareRow) string { return tenant.TimeKey(r.SharedAt) }},
	},
	Default: tenant.Order{Field: "SHARED_AT"},
	ID:      "id",
	IDOf:    func(r *shareRow) string { return r.ID },
}

// FolderSharesOf is FolderShares for many folders, each with the same page
// request, by folder ID: one statement pages every folder's shares at once
// (each folder's page a keyset read of its own), then two read the pages'
// users and groups, and one more each finds the folders with shares before
// the cursor and counts them, when asked. Folders are refused as
// FolderMembersOf refuses them, then a bad page request.
func (s *Service) FolderSharesOf(ctx context.Context, folderIDs []string, order tenant.Order, page tenant.Page) (map[string]*tenant.Connection[*FolderMember], Refused, error) {
	p, allowed, refused, err := s.membersVisible(ctx, folderIDs)
	if err != nil || len(allowed) == 0 {
		return map[string]*tenant.Connection[*FolderMember]{}, refused, err
	}
	ks, err := shareSorts.NewKeyset(order, page)
	if err != nil {
		for _, id := range allowed {
			refused[id] = err
		}
		return map[string]*tenant.Connection[*FolderMember]{}, refused, nil
	}
	out := map[string]*tenant.Connection[*FolderMember]{}
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		pages, err := tenant.ListPages(ctx, q, ks, tenant.BatchQuery{
			ListQuery: tenant.ListQuery{
				Select: `SELECT id, user_id, group_id, preset, created_at`,
				// A deleted user's share is no member (it grants nothing).
				From: `FROM folder_shares WHERE account_id = skiff_account() AND folder_id = parent_id
					AND (user_id IS NULL OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = folder_shares.user_id AND u.deleted_at IS NOT NULL))`,
			},
			Outer: `parent_id AS folder_id, id, user_id, group_id, preset, created_at`,
		}, allowed, func(r *shareRow) (string, *shareRow) { return r.FolderID, r })
		if err != nil {
			return err
		}
		var shares []*shareRow
		for _, id := range allowed {
			shares = append(shares, pages[id].Items...)
		}
		members, err := shareMembers(ctx, q, shares)
		if err != nil {
			return err
		}
		byID := make(map[string]*FolderMember, len(shares))
		for i, sh := range shares {
			byID[sh.ID] = members[i]
		}
		for _, id := range allowed {
			c := tenant.MapConnection(pages[id], func(r *shareRow) *FolderMember { return byID[r.ID] })
			// A member the transaction does not see is left out, as
			// FolderMembersOf leaves it out, with its cursor.
			c.Cursors = slices.Clone(c.Cursors)
			for i := len(c.Items) - 1; i >= 0; i-- {
				if c.Items[i] == nil {
					c.Items, c.Cursors = slices.Delete(c.Items, i, i+1), slices.Delete(c.Cursors, i, i+1)
				}
			}
			out[id] = c
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
func (s *Service) ProjectsSharedWithUsers(ctx context.Context, userIDs []string, order tenant.Order, page tenant.Page) (map[string]*tenant.Connection[*SharedProject], Refused, error) {
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
	// The shared folders in the page's window, in its reading order, once
	// each however many of the users have them; each user's page is then cut
	// from those in Go, keeping the database's order. The folders on the
	// other side of the cursor, and every live shared folder (for counts),
	// are read as IDs only when asked.
	var folders []*ProjectFolder
	var beyond, live map[string]bool
	ks, pageErr := sharedFolderSorts.NewKeyset(order, page)
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
		lq := tenant.ListQuery{
			Select: `SELECT ` + folderColumns,
			From:   `FROM project_folders WHERE account_id = skiff_account() AND deleted_at IS NULL AND id = ANY($1::uuid[])`,
			Args:   []any{tenant.UUIDArray(sortedKeys(shared))},
		}
		query, args := ks.WindowQuery(lq)
		if err := q.SelectContext(ctx, &folders, query, args...); err != nil {
			return tenant.DBError(err)
		}
		if query, args, ok := ks.BeyondQuery(lq); ok {
			if beyond, err = idSet(ctx, q, query, args); err != nil {
				return err
			}
		}
		if ks.Counting() {
			live, err = idSet(ctx, q, `SELECT id `+lq.From, lq.Args)
		}
		return err
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
				if mine = append(mine, f); len(mine) > ks.Limit() {
					break
				}
			}
		}
		page := ks.Page(mine)
		for f := range beyond {
			if _, ok := rights[id][f]; ok {
				ks.MarkBeyond(page)
				break
			}
		}
		for f := range live {
			if _, ok := rights[id][f]; ok {
				page.Total++
			}
		}
		out[id] = tenant.MapConnection(page, func(f *ProjectFolder) *SharedProject {
			r := rights[id][f.ID]
			return &SharedProject{Folder: f, Preset: presetOf(r), Rights: r}
		})
	}
	return out, refused, nil
}

// GroupMembersOf is GroupMembers for many groups, each with the same page
// request, by group ID: one statement checks the groups, one pages every
// group's members at once (each group's page a keyset read of its own).
// Owners and administrators, in their account; support staff, who read any
// account's users, in the staff scope (the groups may then be of several
// accounts). A group not in the account (for staff: none at all) is
// refused as not found.
func (s *Service) GroupMembersOf(ctx context.Context, groupIDs []string, order tenant.Order, page tenant.Page) (map[string]*tenant.Connection[*tenant.User], Refused, error) {
	// Each group's members are read from the users index on (account_id,
	// group_id, sort key, id): in an account's transaction the account is
	// the transaction's, in the staff scope the group's.
	account := `skiff_account()`
	var run func(fn func(q tenant.Queryer) error) error
	if tenant.PrincipalFrom(ctx).IsStaff() {
		account = `(SELECT g.account_id FROM groups g WHERE g.id = parent_id)`
		run = func(fn func(q tenant.Queryer) error) error {
			return s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return fn(tx) })
		}
	} else {
		p, err := s.RequireGroupManager(ctx)
		if err != nil {
			return nil, nil, err
		}
		run = func(fn func(q tenant.Queryer) error) error { return s.InAccount(ctx, p.AccountID, fn) }
	}
	ks, err := memberSorts.NewKeyset(order, page)
	if err != nil {
		return nil, nil, err
	}
	var out map[string]*tenant.Connection[*tenant.User]
	refused := Refused{}
	err = run(func(q tenant.Queryer) error {
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
		type row struct {
			GroupID string `db:"group_id"`
			tenant.User
		}
		out, err = tenant.ListPages(ctx, q, ks, tenant.BatchQuery{
			ListQuery: tenant.ListQuery{
				Select: `SELECT u.*`,
				From:   `FROM users u WHERE u.account_id = ` + account + ` AND u.group_id = parent_id AND u.deleted_at IS NULL`,
			},
			Outer: `parent_id AS group_id, ` + tenant.UserColumns,
		}, groups, func(r *row) (string, *tenant.User) { return r.GroupID, &r.User })
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return out, refused, nil
}

// idSet runs query, which selects IDs, and returns them as a set.
func idSet(ctx context.Context, q tenant.Queryer, query string, args []any) (map[string]bool, error) {
	var ids []string
	if err := q.SelectContext(ctx, &ids, query, args...); err != nil {
		return nil, tenant.DBError(err)
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set, nil
}

// existing returns which of ids are rows of table (a constant) in the
// transaction's account (in the staff scope: in any account).
func existing(ctx context.Context, q tenant.Queryer, table string, ids []string) (map[string]bool, error) {
	var found []string
	if err := q.SelectContext(ctx, &found, `SELECT id FROM `+table+` WHERE id = ANY($1::uuid[])
		AND (account_id = skiff_account() OR skiff_scope() = 'staff')`,
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
