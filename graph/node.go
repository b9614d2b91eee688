package graph

import (
	"context"

	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant"
)

// viewerOf describes principal p as a Viewer.
func (r *Resolver) viewerOf(ctx context.Context, p *tenant.Principal) (model.Viewer, error) {
	if p.IsStaff() {
		return &model.StaffViewer{Staff: &tenant.Staff{ID: p.ID, Email: p.Email, Name: p.Name}}, nil
	}
	u, err := r.Tenant.User(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	a, err := r.Tenant.Account(ctx, p.AccountID)
	if err != nil {
		return nil, err
	}
	return &model.UserViewer{User: u, Account: a}, nil
}

// node resolves a global ID; anything missing or not visible is null.
func (r *Resolver) node(ctx context.Context, gid string) (model.Node, error) {
	typ, id, ok := decodeGlobalID(gid)
	if !ok {
		return nil, nil
	}
	var (
		n   model.Node
		err error
	)
	switch typ {
	case "Account":
		n, err = r.Tenant.Account(ctx, id)
	case "User":
		n, err = r.Tenant.User(ctx, id)
	case "Contact":
		n, err = r.Tenant.Contact(ctx, id)
	case "SshKey":
		n, err = r.Tenant.SSHKey(ctx, id)
	default:
		n, err = r.nodeExt(ctx, typ, id)
	}
	if tenant.ErrorCode(err) == tenant.ENotFound || tenant.ErrorCode(err) == tenant.EForbidden {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}

// nodeExt resolves the node types added by later features; see nodeResolvers.
func (r *Resolver) nodeExt(ctx context.Context, typ, id string) (model.Node, error) {
	if f, ok := nodeResolvers[typ]; ok {
		return f(r, ctx, id)
	}
	return nil, nil
}

// nodeResolvers maps a global-ID type to its loader. Each feature's file adds
// its types in an init function, so this file need not change for them.
var nodeResolvers = map[string]func(r *Resolver, ctx context.Context, id string) (model.Node, error){}
