package graph

import (
	"context"
	"encoding/base64"
	"math"
	"net/netip"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant"
)

// Global IDs are base64url("<Type>:<id>"): opaque to clients, typed for us.

func globalID(typ, id string) string {
	// Joined and encoded in arrays on the stack: a response has one or more
	// IDs per row, and the string is then the only allocation.
	var src [64]byte
	var dst [88]byte // base64 of 64 bytes
	raw := append(append(append(src[:0], typ...), ':'), id...)
	n := base64.RawURLEncoding.EncodedLen(len(raw))
	if n > len(dst) {
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	base64.RawURLEncoding.Encode(dst[:n], raw)
	return string(dst[:n])
}

// parseID returns the local ID in a global ID of type typ. A malformed ID or
// one of another type is reported exactly like a missing object.
func parseID(gid, typ string) (string, error) {
	typ2, id, ok := decodeGlobalID(gid)
	if !ok || typ2 != typ {
		return "", tenant.NotFound(typeNoun(typ))
	}
	return id, nil
}

// idNouns are the object types whose name in an error is not their type's
// name in lower case: as the services name them in theirs, so that a
// malformed ID and an unknown one get the same NOT_FOUND message.
var idNouns = map[string]string{
	"ApiSession": "API session", "DedicatedIpRequest": "dedicated IP request", "ProjectFolder": "project folder",
	"SftpModuleRequest": "SFTP module request", "SftpSession": "SFTP session", "SshKey": "SSH key",
}

func typeNoun(typ string) string {
	if n, ok := idNouns[typ]; ok {
		return n
	}
	return strings.ToLower(typ)
}

func decodeGlobalID(gid string) (typ, id string, ok bool) {
	if len(gid) > 200 {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(gid)
	if err != nil {
		return "", "", false
	}
	typ, id, ok = strings.Cut(string(b), ":")
	return typ, id, ok && typ != "" && id != ""
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// pageSize is a first or last argument as tenant.Page takes it, where 0 is
// the default page: an argument given as 0 is refused like a negative one
// (tenant.Page.Limit), not served as the default.
func pageSize(n *int) int {
	if n != nil && *n == 0 {
		return -1
	}
	return deref(n)
}

// connPage reads a connection's paging arguments. It asks the service to
// count the whole list only when the query selects totalCount.
func connPage(ctx context.Context, first *int, after *string, last *int, before *string) tenant.Page {
	p := tenant.Page{First: pageSize(first), After: deref(after), Last: pageSize(last), Before: deref(before)}
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		p.Count = p.Count || f.Name == "totalCount"
	}
	return p
}

// order is the service's order for an orderBy input's field and direction;
// the services name their orders as the schema's enums do.
func order[F ~string](field F, dir model.OrderDirection) tenant.Order {
	return tenant.Order{Field: string(field), Desc: dir == model.OrderDirectionDesc}
}

func userOrder(o *model.UserOrder) tenant.Order {
	if o == nil {
		return tenant.Order{}
	}
	return order(o.Field, o.Direction)
}

func folderOrder(o *model.ProjectFolderOrder) tenant.Order {
	if o == nil {
		return tenant.Order{}
	}
	return order(o.Field, o.Direction)
}

func pageInfo[T any](c *tenant.Connection[T]) *model.PageInfo {
	pi := &model.PageInfo{HasNextPage: c.HasNext, HasPreviousPage: c.HasPrevious}
	if n := len(c.Cursors); n > 0 {
		pi.StartCursor, pi.EndCursor = &c.Cursors[0], &c.Cursors[n-1]
	}
	return pi
}

// userErrors splits a service error: expected failures become the payload's
// userErrors (nil error); anything else is returned as a GraphQL error.
func userErrors(err error) ([]*model.UserError, error) {
	if err == nil {
		return []*model.UserError{}, nil
	}
	errs := tenant.Errors(err)
	if len(errs) == 0 {
		return nil, err
	}
	out := make([]*model.UserError, 0, len(errs))
	for _, e := range errs {
		var uc model.UserErrorCode
		switch e.Code {
		case tenant.EInvalid:
			uc = model.UserErrorCodeInvalid
		case tenant.EConflict:
			uc = model.UserErrorCodeConflict
		case tenant.ELimit:
			uc = model.UserErrorCodeLimit
		default:
			return nil, err // not a user error: a GraphQL error (the first code is its code)
		}
		ue := &model.UserError{Code: uc, Message: e.Message}
		if e.Field != "" {
			ue.Field = &e.Field
		}
		if e.RetryAfter > 0 {
			secs := int(math.Ceil(e.RetryAfter.Seconds()))
			ue.RetryAfter = &secs
		}
		out = append(out, ue)
	}
	return out, nil
}

type remoteAddrKey struct{}

// withRemoteAddr records the client's address for login throttling.
func withRemoteAddr(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, remoteAddrKey{}, a)
}

func remoteAddr(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(remoteAddrKey{}).(netip.Addr)
	return a
}

// optionalGroupID returns the local ID of an optional group given in a user's
// input ("" when absent); a malformed one is the same user error on groupId
// as an unknown group.
func optionalGroupID(gid *string) (string, error) {
	if gid == nil {
		return "", nil
	}
	id, err := parseID(*gid, "Group")
	if err != nil {
		return "", tenant.Invalid("groupId", "no such group in this account")
	}
	return id, nil
}
