package graph

import (
	"context"

	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// Helpers of the user, group and project folder resolvers, which gqlgen
// would move out of the generated resolver files.

// userConnection is a page of users as GraphQL shows it, with the per-user
// fields the query asks for loaded at once (prefetchUsers).
func (r *Resolver) userConnection(ctx context.Context, c *tenant.Connection[*tenant.User]) *model.UserConnection {
	r.prefetchUsers(ctx, c.Items)
	out := &model.UserConnection{PageInfo: pageInfo(c), TotalCount: c.Total, Edges: make([]*model.UserEdge, len(c.Items))}
	for i, u := range c.Items {
		out.Edges[i] = &model.UserEdge{Cursor: c.Cursors[i], Node: u}
	}
	return out
}

func folderPayload(f *sharing.ProjectFolder, err error) (*model.ProjectFolderPayload, error) {
	ue, err := userErrors(err)
	return &model.ProjectFolderPayload{ProjectFolder: f, UserErrors: ue}, err
}

// shareIDs reads the global IDs of a share: the folder, and the user or the
// group (either may be absent; the service checks there is exactly one).
func shareIDs(folderGID string, userGID, groupGID *string) (folderID, userID, groupID string, err error) {
	if folderID, err = parseID(folderGID, "ProjectFolder"); err != nil {
		return "", "", "", err
	}
	if userGID != nil {
		if userID, err = parseID(*userGID, "User"); err != nil {
			return "", "", "", err
		}
	}
	if groupGID != nil {
		if groupID, err = parseID(*groupGID, "Group"); err != nil {
			return "", "", "", err
		}
	}
	return folderID, userID, groupID, nil
}

// nonNilList is list as a GraphQL list: empty, not null, when it has nothing.
func nonNilList(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// allowedBy turns the answer of an authorization check (tenant.RequireAdmin,
// sharing's RequirePermission, ...) into a capability flag: FORBIDDEN is
// false; any other error (an outage) is returned.
func allowedBy(err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if tenant.ErrorCode(err) == tenant.EForbidden {
		return false, nil
	}
	return false, err
}
