package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vikstrous/dataloadgen"

	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"github.com/skiffhq/skiff/tenant/sftpsessions"
	"github.com/skiffhq/skiff/tenant/storageuse"
)

// accountLoaders batch the per-account fields of a page of accounts
// (support staff's `accounts`), by account ID: one statement per field for
// the whole page, in the staff scope (an owner's or administrator's one
// account reads in its own transaction, as before).
type accountLoaders struct {
	licences    *dataloadgen.Loader[string, *sftpaccess.Licences]
	storage     *dataloadgen.Loader[string, *storageuse.Storage]
	dedicatedIP *dataloadgen.Loader[string, *sftplogin.DedicatedIP]
	hostKeys    *dataloadgen.Loader[string, []outbox.HostKeyFingerprint]
	sessions    *dataloadgen.Loader[string, []*sftpsessions.Session]
	// users is Account.users for staff: one batch per filter, page and order.
	users *dataloadgen.Loader[accountUsersRef, *tenant.Connection[*tenant.User]]
}

// accountUsersRef is one account's Account.users as a query asks for it.
type accountUsersRef struct {
	ID     string
	Filter people.UserFilter // SFTPEnabled always nil: comparable
	Page   tenant.Page
	Order  tenant.Order
}

// userFilter is the service's filter for Account.users' filter argument;
// an absent filter is the default one (live users), spelled as gqlgen
// spells it with its default, so both read the same batch.
func userFilter(f *model.UserFilter) people.UserFilter {
	out := people.UserFilter{Deleted: people.LiveOnly}
	if f != nil {
		out.Search, out.Role = deref(f.Search), deref(f.Role)
		if f.Deleted != nil {
			out.Deleted = *f.Deleted
		}
	}
	return out
}

// userFilterArg reads Account.users' filter argument as the field's
// arguments give it, like userFilter.
func userFilterArg(v any) (people.UserFilter, bool) {
	out := people.UserFilter{Deleted: people.LiveOnly}
	if v == nil {
		return out, true
	}
	m, ok := v.(map[string]any)
	if !ok {
		return out, false
	}
	for k, x := range m {
		str, isStr := x.(string)
		if !isStr && x != nil {
			return out, false
		}
		switch k {
		case "search":
			out.Search = str
		case "role":
			out.Role = tenant.Role(str)
		case "deleted":
			if x != nil {
				out.Deleted = people.DeletedFilter(str)
			}
		default:
			return out, false
		}
	}
	return out, true
}

// loadAccountUsers loads refs in one UsersOf batch per filter, page and order.
func loadAccountUsers(svc *domain.Domain) func(context.Context, []accountUsersRef) ([]*tenant.Connection[*tenant.User], []error) {
	return func(ctx context.Context, refs []accountUsersRef) ([]*tenant.Connection[*tenant.User], []error) {
		vals, errs := make([]*tenant.Connection[*tenant.User], len(refs)), make([]error, len(refs))
		type batch struct {
			f  people.UserFilter
			pg pageReq
		}
		rows := map[batch][]int{}
		for i, r := range refs {
			b := batch{r.Filter, pageReq{r.Page, r.Order}}
			rows[b] = append(rows[b], i)
		}
		for b, at := range rows {
			ids := make([]string, len(at))
			for j, i := range at {
				ids[j] = refs[i].ID
			}
			m, refused, err := svc.People.UsersOf(ctx, ids, b.f, b.pg.Order, b.pg.Page)
			v, e := perKey(ids, m, refused, err, nil)
			for j, i := range at {
				vals[i], errs[i] = v[j], e[j]
			}
		}
		return vals, errs
	}
}

// accountBatch is a room's batch behind an account's field: each account's
// value, or the refusal the one-account method would give it.
type accountBatch[V any] func(context.Context, []string) (map[string]V, map[string]error, error)

func newAccountLoaders(svc *domain.Domain) accountLoaders {
	return accountLoaders{
		licences:    accountLoader(svc.SFTP.SFTPLicencesOf, func(string) error { return tenant.NotFound("account") }),
		storage:     accountLoader(svc.Storage.AccountStorageOf, func(string) error { return tenant.NotFound("account") }),
		dedicatedIP: accountLoader(svc.DedicatedIPs.DedicatedIPsOf, nil), // absent: none
		hostKeys:    accountLoader(svc.DedicatedIPs.HostKeyFingerprintsOf, nil),
		sessions:    accountLoader(svc.LiveSessions.ListOf, nil),
		users:       dataloadgen.NewLoader(loadAccountUsers(svc), dataloadgen.WithWait(batchWait)),
	}
}

func accountLoader[V any](load accountBatch[V], missing func(string) error) *dataloadgen.Loader[string, V] {
	return dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]V, []error) {
		m, refused, err := load(ctx, ids)
		return perKey(ids, m, refused, err, missing)
	}, dataloadgen.WithWait(batchWait))
}

// prefetchAccounts is prefetchUsers for a page of accounts: the licences,
// storage, dedicated IPs (with their host keys) and live SFTP sessions the
// query asks for, and each page of users (users { totalCount } for a user
// count column), loaded at once and one batch each.
func (r *Resolver) prefetchAccounts(ctx context.Context, accounts []*tenant.Account) {
	if len(accounts) == 0 || graphql.GetFieldContext(ctx) == nil {
		return
	}
	ids := make([]string, len(accounts))
	for i, a := range accounts {
		ids[i] = a.ID
	}
	l := &r.loaders(ctx).acct
	if selected(ctx, "edges", "node", "sftpLicences") {
		primeAccounts(ctx, l.licences, ids, r.Tenant.SFTP.SFTPLicencesOf)
	}
	if selected(ctx, "edges", "node", "storage") {
		primeAccounts(ctx, l.storage, ids, r.Tenant.Storage.AccountStorageOf)
	}
	if selected(ctx, "edges", "node", "dedicatedIp") {
		ips := primeAccounts(ctx, l.dedicatedIP, ids, r.Tenant.DedicatedIPs.DedicatedIPsOf)
		var with []string
		for _, id := range ids {
			if ips[id] != nil {
				with = append(with, id)
			}
		}
		if len(with) > 0 && selected(ctx, "edges", "node", "dedicatedIp", "hostKeyFingerprints") {
			primeAccounts(ctx, l.hostKeys, with, r.Tenant.DedicatedIPs.HostKeyFingerprintsOf)
		}
	}
	if selected(ctx, "edges", "node", "sftpSessions") {
		sessions := primeAccounts(ctx, l.sessions, ids, r.Tenant.LiveSessions.ListOf)
		if selected(ctx, "edges", "node", "sftpSessions", "user") {
			r.primeSessionUsers(ctx, sessions)
		}
	}
	for _, fp := range fieldPagesAt(ctx, "edges", "node", "users") {
		f, ok := userFilterArg(fp.Args["filter"])
		if !ok {
			continue // the field loads its own
		}
		m, refused, err := r.Tenant.People.UsersOf(ctx, ids, f, fp.Order, fp.Page)
		if err != nil {
			continue
		}
		for _, id := range ids {
			if refused[id] == nil {
				l.users.Prime(accountUsersRef{id, f, fp.Page, fp.Order}, m[id])
			}
		}
	}
}

// primeSessionUsers loads the users of a page of accounts' live sessions
// in one statement (the users loader reads one account at a time).
func (r *Resolver) primeSessionUsers(ctx context.Context, sessions map[string][]*sftpsessions.Session) {
	var ids []string
	for _, l := range sessions {
		for _, s := range l {
			ids = append(ids, s.UserID)
		}
	}
	if len(ids) == 0 {
		return
	}
	users, err := r.Tenant.People.StaffUsersByID(ctx, ids)
	if err != nil {
		return
	}
	l := r.loaders(ctx).users
	for _, list := range sessions {
		for _, s := range list {
			if u := users[s.UserID]; u != nil && u.AccountID == s.AccountID {
				l.Prime(userRef{s.AccountID, s.UserID}, u)
			}
		}
	}
}

// primeAccounts loads ids with load in one batch and caches each answer
// but refusals (those load, and report, their own) in l; it returns the
// values, none if the batch failed.
func primeAccounts[V any](ctx context.Context, l *dataloadgen.Loader[string, V], ids []string, load accountBatch[V]) map[string]V {
	m, refused, err := load(ctx, ids)
	if err != nil {
		return nil
	}
	for _, id := range ids {
		if refused[id] == nil {
			l.Prime(id, m[id])
		}
	}
	return m
}
