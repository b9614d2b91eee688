package sharing

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/purge"
)

// ProjectFolder is a file tree of an account that its creator shares with
// users and groups. Over SFTP each user it is shared with (the creator too,
// as OWNER) finds it in /Projects Shared With Me/, and the creator also in
// /My Files/ (see SharedFolders).
type ProjectFolder struct {
	ID        string     `db:"id"`
	AccountID string     `db:"account_id"`
	Name      string     `db:"name"`
	CreatedBy string     `db:"created_by"`
	CreatedAt time.Time  `db:"created_at"`
	UpdatedAt time.Time  `db:"updated_at"`
	DeletedAt *time.Time `db:"deleted_at"`
}

func (f *ProjectFolder) AuditState() map[string]any {
	return map[string]any{"name": f.Name, "deleted": f.DeletedAt != nil}
}

const folderColumns = `id, account_id, name, created_by, created_at, updated_at, deleted_at`

// FolderMember is one share of a project folder: with a user or with a group.
type FolderMember struct {
	User     *tenant.User // nil for a group
	Group    *Group       // nil for a user
	Preset   policy.Preset
	SharedAt time.Time
}

// SharedProject is a project folder as one user has it: the preset all their
// shares (direct and through their group) amount to, and their rights.
type SharedProject struct {
	Folder *ProjectFolder
	Preset policy.Preset
	Rights []policy.Right
}

// getFolder loads a live project folder of the transaction's account.
func getFolder(ctx context.Context, q tenant.Queryer, id string, forUpdate bool) (*ProjectFolder, error) {
	if !tenant.IsUUID(id) {
		return nil, tenant.NotFound("project folder")
	}
	query := `SELECT ` + folderColumns + ` FROM project_folders WHERE id = $1 AND account_id = skiff_account() AND deleted_at IS NULL`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	var f ProjectFolder
	if err := q.GetContext(ctx, &f, query, id); err != nil {
		return nil, tenant.NotFoundAs(tenant.DBError(err), "project folder")
	}
	return &f, nil
}

// folderRights returns the principal's rights in a folder of their account.
// A folder they have no right in does not exist for them.
func (s *Service) folderRights(ctx context.Context, p *tenant.Principal, folderID string) ([]policy.Right, error) {
	if !tenant.IsUUID(folderID) {
		return nil, tenant.NotFound("project folder")
	}
	pol, err := s.policy()
	if err != nil {
		return nil, err
	}
	rights, err := pol.RightsIn(ctx, p.ID, p.AccountID, folderID)
	if err != nil {
		return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
	}
	if len(rights) == 0 {
		return nil, tenant.NotFound("project folder")
	}
	return rights, nil
}

// ProjectFolder returns a project folder the principal has any right in
// (owners and administrators manage them all).
func (s *Service) ProjectFolder(ctx context.Context, id string) (*ProjectFolder, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.folderRights(ctx, p, id); err != nil {
		return nil, err
	}
	var f *ProjectFolder
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		f, err = getFolder(ctx, q, id, false)
		return err
	})
	return tenant.Result(f, err)
}

// MyRightsIn returns the principal's rights in a project folder.
func (s *Service) MyRightsIn(ctx context.Context, folderID string) ([]policy.Right, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	return s.folderRights(ctx, p, folderID)
}

// ProjectFolders lists an account's live project folders in order (by name
// by default): all of
// them for owners and administrators, the ones shared with the principal
// (directly or through their group) for other users.
func (s *Service) ProjectFolders(ctx context.Context, accountID, search string, order tenant.Order, page tenant.Page) (*tenant.Connection[*ProjectFolder], error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if !p.InAccount(accountID) {
		return nil, tenant.NotFound("account")
	}
	all, err := s.may(ctx, p, policy.FoldersObject, string(policy.Manage))
	if err != nil {
		return nil, err
	}
	var ids []string
	if !all {
		pol, err := s.policy()
		if err != nil {
			return nil, err
		}
		rights, err := pol.FolderRights(ctx, p.ID, p.AccountID)
		if err != nil {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
		}
		ids = sortedKeys(rights)
	}
	var conn *tenant.Connection[*ProjectFolder]
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var err error
		conn, err = listFolders(ctx, q, folderSorts, all, ids, search, order, page)
		return err
	})
	return tenant.Result(conn, err)
}

// listFolders pages through live folders in order: every folder, or those in ids.
func listFolders(ctx context.Context, q tenant.Queryer, sorts *tenant.Sorts[*ProjectFolder], all bool, ids []string, search string, order tenant.Order, page tenant.Page) (*tenant.Connection[*ProjectFolder], error) {
	ks, err := sorts.NewKeyset(order, page)
	if err != nil {
		return nil, err
	}
	return tenant.ListPage(ctx, q, ks, tenant.ListQuery{
		Select: `SELECT ` + folderColumns,
		From: `FROM project_folders WHERE account_id = skiff_account() AND deleted_at IS NULL
		  AND ($1 OR id = ANY($2::uuid[]))
		  AND ($3 = '' OR name ILIKE $4)`,
		Args: []any{all, tenant.UUIDArray(ids), strings.TrimSpace(search), tenant.LikePattern(search)},
	})
}

// newFolderSorts are the orders of lists of project folders: NAME (the
// default, case-insensitively), CREATED_AT and UPDATED_AT, ties by ID.
func newFolderSorts(list string) *tenant.Sorts[*ProjectFolder] {
	return &tenant.Sorts[*ProjectFolder]{
		List: list,
		Keys: []tenant.SortKey[*ProjectFolder]{
			{Field: "NAME", Expr: "lower(name)", Type: "text", Of: func(f *ProjectFolder) string { return strings.ToLower(f.Name) }},
			{Field: "CREATED_AT", Expr: "created_at", Type: "timestamptz", Of: func(f *ProjectFolder) string { return tenant.TimeKey(f.CreatedAt) }},
			{Field: "UPDATED_AT", Expr: "updated_at", Type: "timestamptz", Of: func(f *ProjectFolder) string { return tenant.TimeKey(f.UpdatedAt) }},
		},
		Default: tenant.Order{Field: "NAME"},
		ID:      "id",
		IDOf:    func(f *ProjectFolder) string { return f.ID },
	}
}

var (
	folderSorts       = newFolderSorts("projectFolders")
	sharedFolderSorts = newFolderSorts("projectsSharedWithMe")
)

// ProjectsSharedWith lists the project folders shared with a user, directly
// or through their group, in order (by name by default), with what the user may do in each. Users
// see their own; owners and administrators anyone's in their account.
func (s *Service) ProjectsSharedWith(ctx context.Context, userID string, order tenant.Order, page tenant.Page) (*tenant.Connection[*SharedProject], error) {
	out, refused, err := s.ProjectsSharedWithUsers(ctx, []string{userID}, order, page)
	return one(userID, out, refused, err)
}

// CreateProjectFolder creates a project folder in the principal's account,
// shared with them as OWNER. Their group must allow creating project folders
// (FORBIDDEN otherwise). The name is what SFTP shows, so it must be a valid
// file name; names need not be unique.
func (s *Service) CreateProjectFolder(ctx context.Context, name string) (*ProjectFolder, error) {
	p, err := s.RequirePermission(ctx, policy.CreateProjectFolders)
	if err != nil {
		return nil, err
	}
	if name, err = folderName(name); err != nil {
		return nil, err
	}
	var f ProjectFolder
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		now := s.Time()
		err := q.GetContext(ctx, &f, `INSERT INTO project_folders (account_id, name, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4) RETURNING `+folderColumns, p.AccountID, name, p.ID, now)
		if err != nil {
			return tenant.DBError(err)
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO folder_shares (account_id, folder_id, user_id, preset, shared_by, created_at, updated_at)
			VALUES ($1, $2, $3, 'OWNER', $3, $4, $4)`, p.AccountID, f.ID, p.ID, now); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "project_folder.created", TargetKind: "ProjectFolder", TargetID: f.ID, After: f.AuditState()})
	})
	s.policyChanged(p.AccountID, err)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// RenameProjectFolder renames a project folder. It needs the MANAGE right on
// it (the OWNER preset, or being an owner or administrator of the account).
// Open SFTP sessions see the new name on their next listing.
func (s *Service) RenameProjectFolder(ctx context.Context, id, name string) (*ProjectFolder, error) {
	name, err := folderName(name)
	if err != nil {
		return nil, err
	}
	return s.manageFolder(ctx, id, "only the folder's owners can rename it", "project_folder.renamed",
		func(q tenant.Queryer, f *ProjectFolder) error {
			return tenant.DBError(q.GetContext(ctx, f, `UPDATE project_folders SET name = $2, updated_at = $3 WHERE id = $1 RETURNING `+folderColumns,
				f.ID, name, s.Time()))
		})
}

// DeleteProjectFolder deletes a project folder and all its shares at once:
// it disappears from every SFTP session on their next operation. It needs
// the MANAGE right. The files stay in storage, out of every user's reach,
// for the grace period (Files.Grace), then the purge deletes them for good.
func (s *Service) DeleteProjectFolder(ctx context.Context, id string) (*ProjectFolder, error) {
	return s.manageFolder(ctx, id, "only the folder's owners can delete it", "project_folder.deleted",
		func(q tenant.Queryer, f *ProjectFolder) error {
			if err := q.GetContext(ctx, f, `UPDATE project_folders SET deleted_at = $2, updated_at = $2 WHERE id = $1 RETURNING `+folderColumns,
				f.ID, s.Time()); err != nil {
				return tenant.DBError(err)
			}
			if _, err := q.ExecContext(ctx, `DELETE FROM folder_shares WHERE folder_id = $1`, f.ID); err != nil {
				return tenant.DBError(err)
			}
			_, err := s.Files.ScheduleTx(ctx, q, f.AccountID, purge.ProjectFolder, f.ID)
			return err
		})
}

// manageFolder applies change to a folder the principal has the MANAGE right
// on (FORBIDDEN with refusal otherwise), under the folder's row lock, and
// records it in the audit trail as kind.
func (s *Service) manageFolder(ctx context.Context, id, refusal, kind string, change func(q tenant.Queryer, f *ProjectFolder) error) (*ProjectFolder, error) {
	p, _, err := s.requireFolderRight(ctx, id, policy.Manage, refusal)
	if err != nil {
		return nil, err
	}
	var f *ProjectFolder
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		if f, err = getFolder(ctx, q, id, true); err != nil {
			return err
		}
		before := f.AuditState()
		if err := change(q, f); err != nil {
			return err
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: kind, TargetKind: "ProjectFolder", TargetID: f.ID, Before: before, After: f.AuditState()})
	})
	s.policyChanged(p.AccountID, err)
	return tenant.Result(f, err)
}

// requireFolderRight returns the principal and their rights in the folder
// if right is among them: NOT_FOUND if they have none at all there,
// FORBIDDEN with message otherwise.
func (s *Service) requireFolderRight(ctx context.Context, folderID string, right policy.Right, message string) (*tenant.Principal, []policy.Right, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, nil, err
	}
	rights, err := s.folderRights(ctx, p, folderID)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(rights, right) {
		return nil, nil, tenant.Errorf(tenant.EForbidden, "%s", message)
	}
	return p, rights, nil
}

// ShareInput shares a project folder with one user or one group.
type ShareInput struct {
	FolderID string
	UserID   string // exactly one of UserID and GroupID
	GroupID  string
	Preset   policy.Preset
}

// shareTarget is who a share is with, checked to be in the account.
type shareTarget struct {
	userID, groupID string
	name            string // for the audit trail
}

// ShareProjectFolder shares a folder with a user or a group with a preset,
// or changes the preset of an existing share. The principal needs the SHARE
// right on the folder and a group that allows sharing project folders; making
// someone OWNER, or changing an OWNER's share, needs the MANAGE right. A
// folder keeps at least one OWNER share. Open SFTP sessions of the people
// concerned see the change on their next operation.
func (s *Service) ShareProjectFolder(ctx context.Context, in ShareInput) (*ProjectFolder, error) {
	var presetErr error
	if !in.Preset.Valid() {
		presetErr = tenant.Invalid("preset", "unknown preset %q", in.Preset)
	}
	if err := errors.Join(checkShareTarget(in.UserID, in.GroupID), presetErr); err != nil {
		return nil, err
	}
	return s.changeShare(ctx, in.FolderID, in.UserID, in.GroupID, in.Preset)
}

// checkShareTarget checks that a share names exactly one of a user and a group.
func checkShareTarget(userID, groupID string) error {
	if (userID == "") == (groupID == "") {
		return tenant.Invalid("userId", "give either a user or a group")
	}
	return nil
}

// UnshareInput removes a project folder's share with one user or one group.
type UnshareInput struct {
	FolderID string
	UserID   string // exactly one of UserID and GroupID
	GroupID  string
}

// UnshareProjectFolder removes a share, with the same rights as sharing. The
// folder disappears from the SFTP sessions of the people who no longer have
// it on their next operation.
func (s *Service) UnshareProjectFolder(ctx context.Context, in UnshareInput) (*ProjectFolder, error) {
	return s.changeShare(ctx, in.FolderID, in.UserID, in.GroupID, "")
}

// changeShare sets the preset of a share, or removes it when preset is "".
func (s *Service) changeShare(ctx context.Context, folderID, userID, groupID string, preset policy.Preset) (*ProjectFolder, error) {
	if err := checkShareTarget(userID, groupID); err != nil {
		return nil, err
	}
	p, rights, err := s.requireFolderRight(ctx, folderID, policy.Share, "you may not share this project folder")
	if err != nil {
		return nil, err
	}
	if _, err := s.RequirePermission(ctx, policy.ShareProjectFolders); err != nil {
		return nil, err
	}
	manager := slices.Contains(rights, policy.Manage)
	if preset == policy.PresetOwner && !manager {
		return nil, tenant.Errorf(tenant.EForbidden, "only the folder's owners can make others owners")
	}
	var f *ProjectFolder
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		// The folder's row lock serialises its share changes, so the
		// last-owner check below cannot race with another one.
		if f, err = getFolder(ctx, q, folderID, true); err != nil {
			return err
		}
		target, err := findShareTarget(ctx, q, userID, groupID)
		if err != nil {
			return err
		}
		var current []string
		if err := q.SelectContext(ctx, &current, `SELECT preset FROM folder_shares
			WHERE folder_id = $1 AND (user_id = nullif($2, '')::uuid OR group_id = nullif($3, '')::uuid)`,
			f.ID, target.userID, target.groupID); err != nil {
			return tenant.DBError(err)
		}
		var before policy.Preset
		if len(current) > 0 {
			before = policy.Preset(current[0])
		}
		switch {
		case before == "" && preset == "":
			return &tenant.Error{Code: tenant.EConflict, Field: shareField(userID), Message: "the folder is not shared with " + target.name}
		case before == preset:
			return nil
		case before == policy.PresetOwner && !manager:
			return tenant.Errorf(tenant.EForbidden, "only the folder's owners can change an owner's share")
		case before == policy.PresetOwner:
			if err := requireAnotherFolderOwner(ctx, q, f.ID, target); err != nil {
				return err
			}
		}
		now := s.Time()
		switch {
		case preset == "":
			_, err = q.ExecContext(ctx, `DELETE FROM folder_shares WHERE folder_id = $1 AND (user_id = nullif($2, '')::uuid OR group_id = nullif($3, '')::uuid)`,
				f.ID, target.userID, target.groupID)
		case before == "":
			_, err = q.ExecContext(ctx, `INSERT INTO folder_shares (account_id, folder_id, user_id, group_id, preset, shared_by, created_at, updated_at)
				VALUES ($1, $2, nullif($3, '')::uuid, nullif($4, '')::uuid, $5, $6, $7, $7)`,
				p.AccountID, f.ID, target.userID, target.groupID, string(preset), p.ID, now)
		default:
			_, err = q.ExecContext(ctx, `UPDATE folder_shares SET preset = $4, shared_by = $5, updated_at = $6
				WHERE folder_id = $1 AND (user_id = nullif($2, '')::uuid OR group_id = nullif($3, '')::uuid)`,
				f.ID, target.userID, target.groupID, string(preset), p.ID, now)
		}
		if err != nil {
			return tenant.DBError(err)
		}
		kind := "project_folder.shared"
		if preset == "" {
			kind = "project_folder.unshared"
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: kind, TargetKind: "ProjectFolder", TargetID: f.ID,
			Before: shareState(target, before), After: shareState(target, preset)})
	})
	s.policyChanged(p.AccountID, err)
	return tenant.Result(f, err)
}

func shareField(userID string) string {
	if userID != "" {
		return "userId"
	}
	return "groupId"
}

func shareState(t *shareTarget, preset policy.Preset) map[string]any {
	m := map[string]any{"with": t.name, "preset": preset}
	if t.userID != "" {
		m["userId"] = t.userID
	} else {
		m["groupId"] = t.groupID
	}
	return m
}

// findShareTarget checks the user or group is in the transaction's account;
// a deleted user cannot be given a share.
func findShareTarget(ctx context.Context, q tenant.Queryer, userID, groupID string) (*shareTarget, error) {
	if userID != "" {
		u, err := tenant.GetUser(ctx, q, userID, false)
		if err != nil {
			return nil, err
		}
		if u.Deleted() {
			return nil, &tenant.Error{Code: tenant.EConflict, Field: "userId", Message: "this user is deleted; restore them first"}
		}
		return &shareTarget{userID: u.ID, name: u.Name}, nil
	}
	g, err := getGroup(ctx, q, groupID, false)
	if err != nil {
		return nil, err
	}
	return &shareTarget{groupID: g.ID, name: "the group " + g.Name}, nil
}

// requireAnotherFolderOwner refuses to take away the last OWNER share of a
// folder (the one with target).
func requireAnotherFolderOwner(ctx context.Context, q tenant.Queryer, folderID string, target *shareTarget) error {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM folder_shares s LEFT JOIN users u ON u.id = s.user_id
		WHERE s.folder_id = $1 AND s.preset = 'OWNER' AND (s.user_id IS NULL OR u.deleted_at IS NULL)
		  AND NOT coalesce(s.user_id = nullif($2, '')::uuid OR s.group_id = nullif($3, '')::uuid, false)`,
		folderID, target.userID, target.groupID)
	if err != nil {
		return tenant.DBError(err)
	}
	if n == 0 {
		return &tenant.Error{Code: tenant.EConflict, Field: "preset", Message: "a project folder keeps at least one owner; make someone else owner first"}
	}
	return nil
}

// FolderMembers lists who a project folder is shared with: live users and
// groups, with their presets, oldest share first. Only users who may share
// the folder (and owners and administrators) see them.
func (s *Service) FolderMembers(ctx context.Context, folderID string) ([]*FolderMember, error) {
	out, refused, err := s.FolderMembersOf(ctx, []string{folderID}, 0)
	return one(folderID, out, refused, err)
}

// FolderShares pages through who a project folder is shared with, oldest
// share first, with the same rights as FolderMembers.
func (s *Service) FolderShares(ctx context.Context, folderID string, page tenant.Page) (*tenant.Connection[*FolderMember], error) {
	out, refused, err := s.FolderSharesOf(ctx, []string{folderID}, tenant.Order{}, page)
	return one(folderID, out, refused, err)
}

// MaxFolderNameBytes bounds a project folder's name in bytes: a folder is one
// file name in every SFTP user's tree, where names are at most 255 bytes
// (NAME_MAX, as in Linux).
const MaxFolderNameBytes = 255

// ReservedNamePrefix starts the names Skiff keeps for its own files in users'
// trees (uploads in progress); no folder may be named so.
const ReservedNamePrefix = ".skiff-"

// folderName checks a project folder's name: it is one file name in every
// SFTP user's tree, so it must be a plain name there (package sftp's tests
// check that the SFTP tree takes every name this accepts).
func folderName(name string) (string, error) {
	name, err := tenant.NormName("name", name, MaxFolderNameBytes)
	if err != nil {
		return "", err
	}
	if len(name) > MaxFolderNameBytes {
		return "", tenant.Invalid("name", "name must be at most %d bytes", MaxFolderNameBytes)
	}
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", tenant.Invalid("name", "a folder name cannot contain / or \\, or be . or ..")
	}
	if strings.HasPrefix(name, ReservedNamePrefix) {
		return "", tenant.Invalid("name", "%q cannot be used as a folder name", name)
	}
	return name, nil
}
