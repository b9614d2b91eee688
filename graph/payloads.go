package graph

import (
	"context"

	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
)

func ptrs[T any](vs []T) []*T {
	out := make([]*T, len(vs))
	for i := range vs {
		out[i] = &vs[i]
	}
	return out
}

func okPayload(err error) (*model.OkPayload, error) {
	ue, err := userErrors(err)
	return &model.OkPayload{Ok: err == nil && len(ue) == 0, UserErrors: ue}, err
}

func licencesPayload(lc *sftpaccess.LicenceChange, err error) (*model.SftpLicencesPayload, error) {
	ue, err := userErrors(err)
	if err != nil || lc == nil {
		return &model.SftpLicencesPayload{UserErrors: ue}, err
	}
	p := &model.SftpLicencesPayload{Account: lc.Account, Licences: &lc.Licences, UserErrors: ue}
	if lc.Warning != "" {
		p.Warning = &lc.Warning
	}
	return p, nil
}

// loginPayload is a successful login's answer.
func (r *Resolver) loginPayload(ctx context.Context, res *people.LoginResult) (*model.LoginPayload, error) {
	v, err := r.viewerOf(tenant.WithPrincipal(ctx, res.Principal), res.Principal)
	if err != nil {
		return nil, err
	}
	return &model.LoginPayload{Token: &res.Token, ExpiresAt: &res.ExpiresAt, Viewer: v, UserErrors: []*model.UserError{}}, nil
}

// mayManage reports whether the caller may see u's keys, SFTP credentials,
// IP allowlist and storage: the user themselves, the account's owners and
// administrators, and staff.
func (r *Resolver) mayManage(ctx context.Context, u *tenant.User) bool {
	p := tenant.PrincipalFrom(ctx)
	return p.IsStaff() || p.IsAdmin(u.AccountID) || (p.InAccount(u.AccountID) && p.ID == u.ID)
}

// errNotYours is the FORBIDDEN error of a user's field that only mayManage
// callers see: the field is null with this error at its path, never an empty
// value that would read as "none".
func errNotYours(what string) error {
	return tenant.Errorf(tenant.EForbidden, "only the user, the account's owners and administrators and support staff see a user's %s", what)
}

// importPayload answers importUsers: each problem both as an ImportProblem
// and as a user error on field csv whose message names the line.
func importPayload(res *people.ImportResult, err error) (*model.ImportUsersPayload, error) {
	ue, err := userErrors(err)
	out := &model.ImportUsersPayload{Users: []*tenant.User{}, Problems: []*model.ImportProblem{}, UserErrors: ue}
	if err != nil || res == nil {
		return out, err
	}
	out.Users = append(out.Users, res.Users...)
	for _, p := range res.Problems {
		e, err := userErrors(&tenant.Error{Code: p.Code, Field: "csv", Message: p.String()})
		if err != nil {
			return nil, err
		}
		ip := &model.ImportProblem{Code: e[0].Code, Message: p.Message}
		if p.Line > 0 {
			ip.Line = &p.Line
		}
		if p.Column != "" {
			ip.Column = &p.Column
		}
		out.Problems = append(out.Problems, ip)
		out.UserErrors = append(out.UserErrors, e...)
	}
	return out, nil
}
