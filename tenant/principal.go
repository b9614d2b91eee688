package tenant

import (
	"context"
	"net/netip"
)

// Role is a user's role in their account.
type Role string

const (
	RoleOwner Role = "OWNER"
	RoleAdmin Role = "ADMIN"
	RoleUser  Role = "USER"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleUser }

// PrincipalKind tells users of an account from support staff.
type PrincipalKind string

const (
	KindUser  PrincipalKind = "USER"
	KindStaff PrincipalKind = "STAFF"
)

// Principal is who is making a request: a user of one account, or a staff member.
type Principal struct {
	Kind      PrincipalKind
	ID        string // user ID or staff ID
	AccountID string // users only
	Role      Role   // users only
	Name      string
	Email     string
	TokenID   string // the bearer token the request came with, if any
	// EnrolOnly is set when two-factor is required of this principal and
	// not yet on: the token may only enrol (see people.Service.Authenticate).
	EnrolOnly bool
	// Addr is the client address the request came from, when known: IP
	// allowlists are checked against it (see people.Service.Authenticate).
	Addr netip.Addr
}

// IsStaff reports whether p is a support-staff member.
func (p *Principal) IsStaff() bool { return p != nil && p.Kind == KindStaff }

// IsAdmin reports whether p is an owner or administrator of accountID.
func (p *Principal) IsAdmin(accountID string) bool {
	return p != nil && p.Kind == KindUser && p.AccountID == accountID && (p.Role == RoleOwner || p.Role == RoleAdmin)
}

// MayChange reports whether p may change u at all (keys, group, SFTP access,
// custom login, name, email, role, deletion): only an owner changes an owner,
// so an administrator can never make themselves able to act as one. Whether
// p may change u in the particular way is the caller's own check.
func (p *Principal) MayChange(u *User) bool {
	return u.Role != RoleOwner || (p.InAccount(u.AccountID) && p.Role == RoleOwner)
}

// ErrOwnersOnly is the refusal when someone but an owner tries to change an owner.
var ErrOwnersOnly = &Error{Code: EForbidden, Message: "only an owner can change an owner"}

// InAccount reports whether p is a user of accountID.
func (p *Principal) InAccount(accountID string) bool {
	return p != nil && p.Kind == KindUser && p.AccountID == accountID
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the request's principal, or nil when unauthenticated.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// RequireUser returns the principal if it is a user, else an UNAUTHENTICATED
// or FORBIDDEN error.
func RequireUser(ctx context.Context) (*Principal, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, Errorf(EUnauthenticated, "log in first")
	}
	if p.Kind != KindUser {
		return nil, Errorf(EForbidden, "only account users can do this")
	}
	return p, nil
}

// RequireStaff returns the principal if it is staff.
func RequireStaff(ctx context.Context) (*Principal, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, Errorf(EUnauthenticated, "log in first")
	}
	if p.Kind != KindStaff {
		return nil, Errorf(EForbidden, "only support staff can do this")
	}
	return p, nil
}

// Actor describes who made a change, for the audit trail and emails.
type Actor struct {
	Kind string // USER, STAFF or SYSTEM
	ID   string
	Name string
}

// ActorOf returns the audit actor for the request's principal.
func ActorOf(ctx context.Context) Actor {
	p := PrincipalFrom(ctx)
	switch {
	case p == nil || IsSystem(p):
		return Actor{Kind: "SYSTEM", Name: "system"}
	case p.Kind == KindStaff:
		return Actor{Kind: "STAFF", ID: p.ID, Name: p.Name + " (support)"}
	default:
		return Actor{Kind: "USER", ID: p.ID, Name: p.Name}
	}
}
