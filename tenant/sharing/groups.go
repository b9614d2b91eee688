package sharing

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
)

// BuiltinGroup names the groups every account has.
type BuiltinGroup string

const (
	GroupPro       BuiltinGroup = "PRO"       // the default group of new users: every permission
	GroupAssociate BuiltinGroup = "ASSOCIATE" // My Files and creating project folders
	GroupJailed    BuiltinGroup = "JAILED"    // Jailed Users: only what is shared with them
)

// Group is a set of users of one account with the same permissions. Every
// user is in exactly one group; see docs/PERMISSIONS.md.
type Group struct {
	ID          string
	AccountID   string
	Name        string
	Builtin     BuiltinGroup // empty for a custom group
	Permissions []policy.Permission
	MemberCount int // live users in the group
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Has reports whether the group grants perm. Jailed Users never grants My Files.
func (g *Group) Has(perm policy.Permission) bool {
	if perm == policy.SFTPMyFiles && g.Builtin == GroupJailed {
		return false
	}
	return slices.Contains(g.Permissions, perm)
}

// Jailed reports whether members see only /Projects Shared With Me/ over SFTP.
func (g *Group) Jailed() bool { return !g.Has(policy.SFTPMyFiles) }

// Default reports whether new users join this group.
func (g *Group) Default() bool { return g.Builtin == GroupPro }

func (g *Group) AuditState() map[string]any {
	return map[string]any{"name": g.Name, "builtin": g.Builtin, "permissions": g.Permissions}
}

// groupRow is a groups row as stored.
type groupRow struct {
	ID          string         `db:"id"`
	AccountID   string         `db:"account_id"`
	Name        string         `db:"name"`
	Builtin     *string        `db:"builtin"`
	Permissions pq.StringArray `db:"permissions"`
	MemberCount int            `db:"member_count"`
	SortKey     string         `db:"sort_key"`
	CreatedAt   time.Time      `db:"created_at"`
	UpdatedAt   time.Time      `db:"updated_at"`
}

func (r *groupRow) group() *Group {
	g := &Group{ID: r.ID, AccountID: r.AccountID, Name: r.Name, MemberCount: r.MemberCount, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.Builtin != nil {
		g.Builtin = BuiltinGroup(*r.Builtin)
	}
	for _, p := range r.Permissions {
		g.Permissions = append(g.Permissions, policy.Permission(p))
	}
	return g
}

// groupSelect reads groups with their live member counts, so lists need no
// query per group.
const groupSelect = groupColumns + ` FROM groups g`

const groupColumns = `SELECT g.id, g.account_id, g.name, g.builtin, g.permissions, g.sort_key, g.created_at, g.updated_at,
	(SELECT count(*) FROM users u WHERE u.account_id = g.account_id AND u.group_id = g.id AND u.deleted_at IS NULL) AS member_count`

// groupSorts are the orders of Groups: BUILT_IN_FIRST (Pro, Associate,
// Jailed Users, then the custom groups by name), the default; NAME; CREATED_AT.
var groupSorts = &tenant.Sorts[*groupRow]{
	List: "groups",
	Keys: []tenant.SortKey[*groupRow]{
		{Field: "BUILT_IN_FIRST", Expr: "g.sort_key", Type: "text", Of: func(r *groupRow) string { return r.SortKey }},
		{Field: "NAME", Expr: "lower(g.name)", Type: "text", Of: func(r *groupRow) string { return strings.ToLower(r.Name) }},
		{Field: "CREATED_AT", Expr: "g.created_at", Type: "timestamptz", Of: func(r *groupRow) string { return tenant.TimeKey(r.CreatedAt) }},
	},
	Default: tenant.Order{Field: "BUILT_IN_FIRST"},
	ID:      "g.id",
	IDOf:    func(r *groupRow) string { return r.ID },
}

// getGroup loads a group of the transaction's account; another account's is not found.
func getGroup(ctx context.Context, q tenant.Queryer, id string, forUpdate bool) (*Group, error) {
	if !tenant.IsUUID(id) {
		return nil, tenant.NotFound("group")
	}
	query := groupSelect + ` WHERE g.id = $1 AND g.account_id = skiff_account()`
	if forUpdate {
		query += ` FOR UPDATE OF g`
	}
	var r groupRow
	if err := q.GetContext(ctx, &r, query, id); err != nil {
		return nil, tenant.NotFoundAs(tenant.DBError(err), "group")
	}
	return r.group(), nil
}

// builtinGroup loads one of the account's built-in groups.
func builtinGroup(ctx context.Context, q tenant.Queryer, accountID string, b BuiltinGroup) (*Group, error) {
	var r groupRow
	err := q.GetContext(ctx, &r, groupSelect+` WHERE g.account_id = $1 AND g.builtin = $2`, accountID, string(b))
	if err != nil {
		return nil, tenant.DBError(err)
	}
	return r.group(), nil
}

// RequireGroupManager returns the principal if the policy lets them manage
// the account's groups and move users between them (owners and
// administrators), FORBIDDEN otherwise.
func (s *Service) RequireGroupManager(ctx context.Context) (*tenant.Principal, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.require(ctx, p, policy.GroupsObject, policy.ManageGroups,
		"only account owners and administrators can manage groups"); err != nil {
		return nil, err
	}
	return p, nil
}

// mayReadGroups reports whether p sees every group of accountID (and every
// user's group): group managers (owners, administrators), and support staff,
// who read any account's groups as they read its users. Members are listed
// to group managers only (GroupMembersOf).
func (s *Service) mayReadGroups(ctx context.Context, p *tenant.Principal, accountID string) (bool, error) {
	if p.IsStaff() {
		return true, nil
	}
	if !p.InAccount(accountID) {
		return false, nil
	}
	return s.may(ctx, p, policy.GroupsObject, policy.ManageGroups)
}

// Groups lists an account's groups in order (built-in groups first, then by
// name, by default). Owners, administrators and support staff see every
// group; other users see their own.
func (s *Service) Groups(ctx context.Context, accountID string, order tenant.Order, page tenant.Page) (*tenant.Connection[*Group], error) {
	p := tenant.PrincipalFrom(ctx)
	if p == nil {
		return nil, tenant.Errorf(tenant.EUnauthenticated, "log in first")
	}
	if !p.IsStaff() && !p.InAccount(accountID) {
		return nil, tenant.NotFound("account")
	}
	manager, err := s.mayReadGroups(ctx, p, accountID)
	if err != nil {
		return nil, err
	}
	ks, err := groupSorts.NewKeyset(order, page)
	if err != nil {
		return nil, err
	}
	var conn *tenant.Connection[*groupRow]
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) (err error) {
		conn, err = tenant.ListPage(ctx, q, ks, tenant.ListQuery{
			Select: groupColumns,
			From: `FROM groups g WHERE g.account_id = $1
			  AND ($2 OR g.id = (SELECT group_id FROM users WHERE id = $3))`,
			Args: []any{accountID, manager, p.ID},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return tenant.MapConnection(conn, (*groupRow).group), nil
}

// Group returns a group the principal may see: any group of their account
// for owners and administrators, their own group for other users.
func (s *Service) Group(ctx context.Context, id string) (*Group, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	manager, err := s.may(ctx, p, policy.GroupsObject, policy.ManageGroups)
	if err != nil {
		return nil, err
	}
	var g *Group
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		if g, err = getGroup(ctx, q, id, false); err != nil {
			return err
		}
		if !manager {
			var own string
			if err := q.GetContext(ctx, &own, `SELECT group_id FROM users WHERE id = $1`, p.ID); err != nil {
				return tenant.DBError(err)
			}
			if own != g.ID {
				return tenant.NotFound("group")
			}
		}
		return nil
	})
	return tenant.Result(g, err)
}

// GroupOfUser returns a user's group. Owners and administrators see anyone's;
// other users their own (anyone else's is not found).
func (s *Service) GroupOfUser(ctx context.Context, userID string) (*Group, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := s.GroupsOfUsers(ctx, p.AccountID, []string{userID})
	if err != nil {
		return nil, err
	}
	if g := groups[userID]; g != nil {
		return g, nil
	}
	return nil, tenant.NotFound("user")
}

// GroupsOfUsers loads the groups of several users of an account, with their
// member counts, in one query, for a dataloader behind User.group. Owners and
// administrators get everyone's; other users only their own: the rest are
// absent from the map.
func (s *Service) GroupsOfUsers(ctx context.Context, accountID string, userIDs []string) (map[string]*Group, error) {
	return s.groupsOfUsers(ctx, accountID, userIDs, true)
}

// GroupsOfUsersUncounted is GroupsOfUsers without the groups' member counts
// (MemberCount is left 0), for pages that do not show them: counting the
// live members of a group of 10,000 users under row-level security is most
// of the time of a page of users, and most pages only show the group's name.
func (s *Service) GroupsOfUsersUncounted(ctx context.Context, accountID string, userIDs []string) (map[string]*Group, error) {
	return s.groupsOfUsers(ctx, accountID, userIDs, false)
}

func (s *Service) groupsOfUsers(ctx context.Context, accountID string, userIDs []string, counted bool) (map[string]*Group, error) {
	p := tenant.PrincipalFrom(ctx)
	out := make(map[string]*Group, len(userIDs))
	if !p.InAccount(accountID) && !p.IsStaff() {
		return out, nil
	}
	manager, err := s.mayReadGroups(ctx, p, accountID)
	if err != nil {
		return nil, err
	}
	if !manager {
		userIDs = slices.DeleteFunc(slices.Clone(userIDs), func(id string) bool { return id != p.ID })
	}
	if len(userIDs) == 0 {
		return out, nil
	}
	// Each distinct group (and its member count) is read once, not once
	// per user: a page of users is mostly in one or two groups.
	query := `WITH picked AS MATERIALIZED (
			SELECT id, group_id FROM users WHERE account_id = $1 AND id = ANY($2::uuid[])),
		gg AS MATERIALIZED (` + groupSelect + ` WHERE g.account_id = $1 AND g.id IN (SELECT group_id FROM picked))
		SELECT picked.id AS user_id, gg.* FROM picked JOIN gg ON gg.id = picked.group_id`
	if !counted {
		query = `SELECT u.id AS user_id, g.id, g.account_id, g.name, g.builtin, g.permissions,
				g.sort_key, g.created_at, g.updated_at, 0 AS member_count
			FROM users u JOIN groups g ON g.account_id = u.account_id AND g.id = u.group_id
			WHERE u.account_id = $1 AND u.id = ANY($2::uuid[])`
	}
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var rows []struct {
			UserID string `db:"user_id"`
			groupRow
		}
		if err := q.SelectContext(ctx, &rows, query, accountID, tenant.UUIDArray(userIDs)); err != nil {
			return tenant.DBError(err)
		}
		for i := range rows {
			out[rows[i].UserID] = rows[i].group()
		}
		return nil
	})
	return out, err
}

// GroupMembers lists a group's live users by name. Owners and administrators only.
func (s *Service) GroupMembers(ctx context.Context, groupID string, order tenant.Order, page tenant.Page) (*tenant.Connection[*tenant.User], error) {
	out, refused, err := s.GroupMembersOf(ctx, []string{groupID}, order, page)
	return one(groupID, out, refused, err)
}

// memberSorts are the orders of GroupMembers.
var memberSorts = tenant.UserSorts("members")

// CreateGroupInput is a new custom group.
type CreateGroupInput struct {
	Name        string
	Permissions []policy.Permission
}

// CreateGroup adds a custom group to the principal's account. Owners and
// administrators only. The name must be unused in the account (ignoring case).
func (s *Service) CreateGroup(ctx context.Context, in CreateGroupInput) (*Group, error) {
	p, err := s.RequireGroupManager(ctx)
	if err != nil {
		return nil, err
	}
	name, nameErr := tenant.NormName("name", in.Name, 100)
	perms, permErr := normPermissions(in.Permissions)
	if err := errors.Join(nameErr, permErr); err != nil {
		return nil, err
	}
	var g *Group
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var id string
		err := q.GetContext(ctx, &id, `INSERT INTO groups (account_id, name, permissions, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4) RETURNING id`, p.AccountID, name, permissionArray(perms), s.Time())
		if err != nil {
			return groupNameTaken(tenant.DBError(err))
		}
		if g, err = getGroup(ctx, q, id, false); err != nil {
			return err
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "group.created", TargetKind: "Group", TargetID: g.ID, After: g.AuditState()})
	})
	s.policyChanged(p.AccountID, err)
	return tenant.Result(g, err)
}

// UpdateGroupInput changes a group; nil fields stay as they are.
type UpdateGroupInput struct {
	ID          string
	Name        *string
	Permissions *[]policy.Permission
}

// UpdateGroup renames a custom group or changes any group's permissions.
// Owners and administrators only; only an owner changes the permissions of
// a group an owner is in (ErrOwnersInGroup), since they decide the owner's
// SFTP tree (a jail) and what the owner may do, which administrators may
// not change. Renaming such a group changes nothing of the owner's and
// stays open to administrators. Built-in groups keep their names, and
// Jailed Users cannot be given My Files. Members whose jail changes have
// their SFTP sessions on this node ended, so that they reconnect to the tree
// they now have.
func (s *Service) UpdateGroup(ctx context.Context, in UpdateGroupInput) (*Group, error) {
	p, err := s.RequireGroupManager(ctx)
	if err != nil {
		return nil, err
	}
	var (
		g       *Group
		members []string // whose jail changed
	)
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		if g, err = getGroup(ctx, q, in.ID, true); err != nil {
			return err
		}
		before, wasJailed := g.AuditState(), g.Jailed()
		name, perms, err := checkGroupUpdate(g, in)
		if err != nil {
			return err
		}
		if in.Name != nil {
			g.Name = name
		}
		if in.Permissions != nil {
			if !samePermissions(perms, g.Permissions) && p.Role != tenant.RoleOwner {
				if err := refuseIfOwnersIn(ctx, q, g.ID); err != nil {
					return err
				}
			}
			g.Permissions = perms
		}
		_, err = q.ExecContext(ctx, `UPDATE groups SET name = $2, permissions = $3, updated_at = $4 WHERE id = $1`,
			g.ID, g.Name, permissionArray(g.Permissions), s.Time())
		if err != nil {
			return groupNameTaken(tenant.DBError(err))
		}
		if g, err = getGroup(ctx, q, g.ID, false); err != nil {
			return err
		}
		if g.Jailed() != wasJailed {
			if err := q.SelectContext(ctx, &members, `SELECT id FROM users WHERE group_id = $1 AND deleted_at IS NULL`, g.ID); err != nil {
				return tenant.DBError(err)
			}
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "group.updated", TargetKind: "Group", TargetID: g.ID, Before: before, After: g.AuditState()})
	})
	s.policyChanged(p.AccountID, err)
	if err == nil {
		for _, id := range members {
			s.EndSessions(p.AccountID, id)
		}
	}
	return tenant.Result(g, err)
}

// checkGroupUpdate checks the name and the permissions an update gives g,
// and returns them normalised, or every bad field at once (errors.Join).
func checkGroupUpdate(g *Group, in UpdateGroupInput) (name string, perms []policy.Permission, err error) {
	var nameErr, permErr error
	if in.Name != nil {
		name, nameErr = tenant.NormName("name", *in.Name, 100)
		if nameErr == nil && g.Builtin != "" && name != g.Name {
			nameErr = tenant.Invalid("name", "built-in groups keep their names; create a custom group instead")
		}
	}
	if in.Permissions != nil {
		perms, permErr = normPermissions(*in.Permissions)
		if permErr == nil && g.Builtin == GroupJailed && slices.Contains(perms, policy.SFTPMyFiles) {
			permErr = tenant.Invalid("permissions", "Jailed Users never have SFTP access to My Files; move the users to another group instead")
		}
	}
	return name, perms, errors.Join(nameErr, permErr)
}

// ErrOwnersInGroup refuses an administrator's change to the permissions of
// a group an owner is in.
var ErrOwnersInGroup = &tenant.Error{Code: tenant.EForbidden, Message: "only an owner can change the permissions of a group an owner is in"}

// refuseIfOwnersIn returns ErrOwnersInGroup when a live owner is in the group.
func refuseIfOwnersIn(ctx context.Context, q tenant.Queryer, groupID string) error {
	var owners bool
	if err := q.GetContext(ctx, &owners, `SELECT EXISTS (SELECT 1 FROM users WHERE group_id = $1 AND role = $2 AND deleted_at IS NULL)`,
		groupID, tenant.RoleOwner); err != nil {
		return tenant.DBError(err)
	}
	if owners {
		return ErrOwnersInGroup
	}
	return nil
}

// DeleteGroup removes a custom group and the project folder shares made with
// it. Owners and administrators only. It is refused (a user error) while live
// users are in the group, and for built-in groups. Deleted users still in the
// group move to Jailed Users, the safe place should they be restored.
func (s *Service) DeleteGroup(ctx context.Context, id string) (*Group, error) {
	p, err := s.RequireGroupManager(ctx)
	if err != nil {
		return nil, err
	}
	var g *Group
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		// The row lock makes a concurrent setUserGroup into this group wait,
		// and then fail on the foreign key, rather than strand its user.
		if g, err = getGroup(ctx, q, id, true); err != nil {
			return err
		}
		if g.Builtin != "" {
			return &tenant.Error{Code: tenant.EConflict, Field: "id", Message: "built-in groups cannot be deleted"}
		}
		if g.MemberCount > 0 {
			return &tenant.Error{Code: tenant.EConflict, Field: "id", Message: tenant.Plural(g.MemberCount, "user is", "users are") +
				" in this group; move them to another group first"}
		}
		jailed, err := builtinGroup(ctx, q, p.AccountID, GroupJailed)
		if err != nil {
			return err
		}
		var moved []string
		if err := q.SelectContext(ctx, &moved, `UPDATE users SET group_id = $2 WHERE group_id = $1 AND deleted_at IS NOT NULL RETURNING id`,
			g.ID, jailed.ID); err != nil {
			return tenant.DBError(err)
		}
		for _, id := range moved {
			if err := audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "user.group_changed", TargetKind: "User", TargetID: id,
				Before: map[string]any{"group": g.Name, "groupId": g.ID}, After: map[string]any{"group": jailed.Name, "groupId": jailed.ID}}); err != nil {
				return err
			}
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM groups WHERE id = $1`, g.ID); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "group.deleted", TargetKind: "Group", TargetID: g.ID, Before: g.AuditState()})
	})
	s.policyChanged(p.AccountID, err)
	return tenant.Result(g, err)
}

// SetUserGroup moves a user to a group of the same account. Owners and
// administrators only, and only owners move an owner; a deleted user must be
// restored first. If the move
// jails or frees the user, their SFTP sessions on this node end so that they
// reconnect to the tree they now have.
func (s *Service) SetUserGroup(ctx context.Context, userID, groupID string) (*tenant.User, error) {
	u, _, err := s.MoveUser(ctx, userID, groupID)
	return u, err
}

// MoveUser is SetUserGroup also returning the group the user left, so that
// a client can correct both groups' member counts; it is nil when the user
// was already in the group (nothing changed) and on error.
func (s *Service) MoveUser(ctx context.Context, userID, groupID string) (*tenant.User, *Group, error) {
	p, err := s.RequireGroupManager(ctx)
	if err != nil {
		return nil, nil, err
	}
	var (
		u           *tenant.User
		from        *Group
		jailChanged bool
	)
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		if u, err = tenant.GetUser(ctx, q, userID, true); err != nil {
			return err
		}
		from, jailChanged, err = s.setUserGroupTx(ctx, q, p, u, groupID, "userId")
		return err
	})
	s.AfterUserGroupChange(p.AccountID, u, jailChanged, err)
	if err != nil {
		return nil, nil, err
	}
	return u, from, nil
}

// SetUserGroupTx moves u to the group groupID inside the caller's
// transaction, which holds u's row lock: createUser, updateUser and
// convertContactToUser use it so that a user is in their group before any
// SFTP credential of theirs exists. The caller has checked p with
// RequireGroupManager before opening the transaction; an unknown group is a
// user error on field. It reports whether the move jailed or freed the user;
// the caller passes that, once committed, to AfterUserGroupChange.
func (s *Service) SetUserGroupTx(ctx context.Context, q tenant.Queryer, p *tenant.Principal, u *tenant.User, groupID, field string) (jailChanged bool, err error) {
	_, jailChanged, err = s.setUserGroupTx(ctx, q, p, u, groupID, field)
	if tenant.ErrorCode(err) == tenant.ENotFound {
		return false, &tenant.Error{Code: tenant.EInvalid, Field: field, Message: "no such group in this account"}
	}
	return jailChanged, err
}

// setUserGroupTx moves u to groupID and returns the group u left (nil when
// u was already in it) and whether the move jailed or freed u.
func (s *Service) setUserGroupTx(ctx context.Context, q tenant.Queryer, p *tenant.Principal, u *tenant.User, groupID, field string) (*Group, bool, error) {
	if !p.MayChange(u) {
		return nil, false, tenant.ErrOwnersOnly
	}
	if u.Deleted() {
		return nil, false, &tenant.Error{Code: tenant.EConflict, Field: field, Message: "this user is deleted; restore them first"}
	}
	to, err := getGroup(ctx, q, groupID, false)
	if err != nil {
		return nil, false, err
	}
	var fromID string
	if err := q.GetContext(ctx, &fromID, `SELECT group_id FROM users WHERE id = $1`, u.ID); err != nil {
		return nil, false, tenant.DBError(err)
	}
	if fromID == to.ID {
		return nil, false, nil
	}
	from, err := getGroup(ctx, q, fromID, false)
	if err != nil {
		return nil, false, err
	}
	if _, err := q.ExecContext(ctx, `UPDATE users SET group_id = $2, updated_at = $3 WHERE id = $1`, u.ID, to.ID, s.Time()); err != nil {
		return nil, false, tenant.DBError(err)
	}
	from.MemberCount-- // read before the move; u is live (checked above)
	return from, from.Jailed() != to.Jailed(), audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "user.group_changed", TargetKind: "User", TargetID: u.ID,
		Before: map[string]any{"group": from.Name, "groupId": from.ID}, After: map[string]any{"group": to.Name, "groupId": to.ID}})
}

// AfterUserGroupChange runs after the transaction of a group change ends:
// when it committed (err nil), the account's policy is reloaded and, if the
// move jailed or freed the user, their SFTP sessions on this node end so
// that they reconnect to the tree they now have.
func (s *Service) AfterUserGroupChange(accountID string, u *tenant.User, jailChanged bool, err error) {
	s.policyChanged(accountID, err)
	if err == nil && jailChanged && u != nil {
		s.EndSessions(accountID, u.ID)
	}
}

// normPermissions checks permissions against the vocabulary and puts them in
// its order, without repeats.
func normPermissions(in []policy.Permission) ([]policy.Permission, error) {
	out := []policy.Permission{}
	for _, p := range policy.Permissions() {
		if slices.Contains(in, p) {
			out = append(out, p)
		}
	}
	for _, p := range in {
		if !p.Valid() {
			return nil, tenant.Invalid("permissions", "unknown permission %q", p)
		}
	}
	return out, nil
}

// samePermissions reports whether a and b hold the same permissions, in
// any order.
func samePermissions(a, b []policy.Permission) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(p policy.Permission) bool { return !slices.Contains(b, p) })
}

func permissionArray(perms []policy.Permission) any {
	s := make([]string, len(perms))
	for i, p := range perms {
		s[i] = string(p)
	}
	return tenant.StringArray(s)
}

// groupNameTaken names the field of the one unique value of a group.
func groupNameTaken(err error) error {
	if tenant.ErrorCode(err) == tenant.EConflict {
		return &tenant.Error{Code: tenant.EConflict, Field: "name", Message: "a group with this name already exists"}
	}
	return err
}
