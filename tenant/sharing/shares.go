package sharing

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
)

// Policy is what the services ask about permissions: the Casbin enforcer of
// package policy, shared by GraphQL and SFTP. May errors mean the policy
// could not be read; the services then refuse with an internal error.
type Policy interface {
	May(ctx context.Context, userID, accountID, object, action string) (bool, error)
	FolderRights(ctx context.Context, userID, accountID string) (map[string][]policy.Right, error)
	RightsIn(ctx context.Context, userID, accountID, folderID string) ([]policy.Right, error)
	RightsInFolders(ctx context.Context, userID, accountID string, folderIDs []string) (map[string][]policy.Right, error)
	// Invalidate is called after a change commits, so this node sees it at
	// once; other nodes learn of it by notification.
	Invalidate(accountID string)
}

var _ Policy = (*policy.Enforcer)(nil)

// policy returns the service's Policy. A service given none (tests, tools)
// gets, on first use, an enforcer on its own database that, not listening,
// re-reads an account's policy when its copy is a second old.
func (s *Service) policy() (Policy, error) {
	s.policyOnce.Do(func() {
		if s.Policy != nil {
			return
		}
		e, err := policy.New(s.DB, policy.Options{})
		if err != nil {
			s.policyErr = &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
			return
		}
		s.Policy = e
	})
	if s.policyErr != nil {
		return nil, s.policyErr
	}
	return s.Policy, nil
}

// may asks the policy about the principal in their own account.
func (s *Service) may(ctx context.Context, p *tenant.Principal, object, action string) (bool, error) {
	return s.userMay(ctx, p.AccountID, p.ID, object, action)
}

// userMay asks the policy about a user of an account.
func (s *Service) userMay(ctx context.Context, accountID, userID, object, action string) (bool, error) {
	pol, err := s.policy()
	if err != nil {
		return false, err
	}
	ok, err := pol.May(ctx, userID, accountID, object, action)
	if err != nil {
		return false, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("policy: %w", err)}
	}
	return ok, nil
}

// require is may that refuses with FORBIDDEN and message.
func (s *Service) require(ctx context.Context, p *tenant.Principal, object, action, message string) error {
	ok, err := s.may(ctx, p, object, action)
	if err != nil {
		return err
	}
	if !ok {
		return tenant.Errorf(tenant.EForbidden, "%s", message)
	}
	return nil
}

// policyChanged tells this node's policy that a change to the account
// committed (err is nil), so the caller's next request already sees it.
func (s *Service) policyChanged(accountID string, err error) {
	if err != nil {
		return
	}
	if pol, perr := s.policy(); perr == nil {
		pol.Invalidate(accountID)
	}
}

// RequirePermission returns the principal if their group grants perm in
// their account (owners and administrators also manage contacts through
// their role), and FORBIDDEN otherwise.
func (s *Service) RequirePermission(ctx context.Context, perm policy.Permission) (*tenant.Principal, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.require(ctx, p, policy.AccountObject, string(perm), permissionRefusal(perm)); err != nil {
		return nil, err
	}
	return p, nil
}

func permissionRefusal(perm policy.Permission) string {
	switch perm {
	case policy.CreateProjectFolders:
		return "your group does not allow creating project folders"
	case policy.ShareProjectFolders:
		return "your group does not allow sharing project folders"
	case policy.ManageContacts:
		return "your group does not allow managing contacts"
	case policy.SFTPMyFiles:
		return "your group does not give access to My Files"
	}
	return "your group does not allow this"
}

// SFTPJailed reports whether the user's SFTP tree is only
// /Projects Shared With Me/: their group does not grant My Files.
func (s *Service) SFTPJailed(ctx context.Context, accountID, userID string) (bool, error) {
	ok, err := s.userMay(ctx, accountID, userID, policy.AccountObject, string(policy.SFTPMyFiles))
	return !ok, err
}

// SharedFolder is a project folder as one user's SFTP tree shows it.
type SharedFolder struct {
	ID string
	// Name is the folder's name, told apart from other folders of the same
	// name by their creator's (see displayNames).
	Name string
	// Rights are the user's rights in the folder, directly or through their
	// group or role; never only Manage, which has no SFTP operation.
	Rights []policy.Right
	// Mine: the user created it, so it is in their /My Files/ too.
	Mine bool
}

// SharedFolders lists the project folders userID has a right to work in over
// SFTP: shared with them, directly or through their group, with the rights
// the policy gives them there. An SFTP session asks again when its copy is
// older than its cache TTL, so shares, unshares and preset changes reach open
// sessions on their next operation.
//
// The folders the user created are also in their /My Files/ (unless they
// are jailed), for as long as they have any right in them: a folder belongs
// to the My Files of the one who made it, whatever preset they now have,
// so its path there does not come and go as presets change. Others it is
// shared with, OWNERs too, find it under /Projects Shared With Me/ only.
func (s *Service) SharedFolders(ctx context.Context, accountID, userID string) ([]SharedFolder, error) {
	pol, err := s.policy()
	if err != nil {
		return nil, err
	}
	rights, err := pol.FolderRights(ctx, userID, accountID)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	ids := make([]string, 0, len(rights))
	for id, r := range rights {
		if slices.ContainsFunc(r, func(x policy.Right) bool { return x != policy.Manage }) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var folders []sharedFolder
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		return tenant.DBError(q.SelectContext(ctx, &folders, `SELECT f.id, f.name, coalesce(u.name, '') AS creator,
			f.created_by = $3::uuid AS mine
			FROM project_folders f LEFT JOIN users u ON u.account_id = f.account_id AND u.id = f.created_by
			WHERE f.account_id = $1 AND f.id = ANY($2::uuid[]) AND f.deleted_at IS NULL`, accountID, tenant.UUIDArray(ids), userID))
	})
	if err != nil {
		return nil, err
	}
	names := displayNames(folders)
	out := make([]SharedFolder, len(folders))
	for i, f := range folders {
		out[i] = SharedFolder{ID: f.ID, Name: names[i], Rights: rights[f.ID], Mine: f.Mine}
	}
	return out, nil
}

// sharedFolder is a row of SharedFolders' query.
type sharedFolder struct {
	ID      string `db:"id"`
	Name    string `db:"name"`
	Creator string `db:"creator"`
	Mine    bool   `db:"mine"` // the session's user created it
}

// displayNames tells apart folders of the same name by their creator's name,
// e.g. "Plans (Ada Lovelace)", so users see whose is whose; the session
// numbers any clash left over. The user's own folders keep their names,
// which are then the same here as in their /My Files/.
func displayNames(folders []sharedFolder) []string {
	count := map[string]int{}
	for _, f := range folders {
		count[f.Name]++
	}
	out := make([]string, len(folders))
	for i, f := range folders {
		out[i] = f.Name
		if count[f.Name] > 1 && f.Creator != "" && !f.Mine {
			out[i] = f.Name + " (" + f.Creator + ")"
		}
	}
	return out
}

// presetOf is the largest preset whose rights are all in rights: what a set
// of shares (and a role) amounts to, since presets are nested.
func presetOf(rights []policy.Right) policy.Preset { return policy.PresetOf(rights) }

// sortedKeys returns a map's keys in order, for stable queries and output.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
