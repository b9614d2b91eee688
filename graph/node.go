package graph

import (
	"context"

	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
)

// viewerOf describes principal p as a Viewer.
func (r *Resolver) viewerOf(ctx context.Context, p *tenant.Principal) (model.Viewer, error) {
	if p.IsStaff() {
		return &model.StaffViewer{Staff: &people.Staff{ID: p.ID, Email: p.Email, Name: p.Name}}, nil
	}
	u, err := r.Tenant.People.User(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	a, err := r.Tenant.Accounts.Account(ctx, p.AccountID)
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
		n, err = r.Tenant.Accounts.Account(ctx, id)
	case "User":
		n, err = r.Tenant.People.User(ctx, id)
	case "Contact":
		n, err = r.Tenant.People.Contact(ctx, id)
	case "Staff":
		n, err = r.Tenant.People.StaffMember(ctx, id)
	case "SshKey":
		n, err = r.Tenant.SFTP.SSHKey(ctx, id)
	case "SftpModuleRequest":
		n, err = r.Tenant.SFTP.SFTPModuleRequest(ctx, id)
	case "DedicatedIpRequest":
		n, err = r.Tenant.DedicatedIPs.DedicatedIPRequest(ctx, id)
	case "Group":
		n, err = r.Tenant.Sharing.Group(ctx, id)
	case "ProjectFolder":
		n, err = r.Tenant.Sharing.ProjectFolder(ctx, id)
	case "Notification":
		n, err = r.Tenant.Outbox.Notification(ctx, id)
	case "AuditEvent":
		n, err = r.Tenant.Audit.Event(ctx, id)
	case "ApiSession":
		n, err = r.Tenant.People.APISession(ctx, id)
	case "SftpSession":
		n, err = r.Tenant.LiveSessions.Get(ctx, id)
	default:
		return nil, nil
	}
	if tenant.ErrorCode(err) == tenant.ENotFound || tenant.ErrorCode(err) == tenant.EForbidden {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}
