package graph

import (
	"context"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// userRef names a user within its account; loaders batch by account.
type userRef struct{ AccountID, UserID string }

// loaders batch the per-user lookups of one request into one query per kind
// (per account), so a page of users costs a constant number of statements.
type loaders struct {
	sshKeys     *dataloadgen.Loader[userRef, []*sftpaccess.SSHKey]
	credentials *dataloadgen.Loader[userRef, *sftpaccess.Credentials]
	accounts    *dataloadgen.Loader[string, *tenant.Account]
	// users loads users by ID (project folders' creators); one the caller
	// may not see loads as nil.
	users  *dataloadgen.Loader[userRef, *tenant.User]
	groups *dataloadgen.Loader[userRef, *sharing.Group]
	// groupNames loads groups without their member counts, for selections
	// that do not ask for memberCount (counting is the costly part).
	groupNames *dataloadgen.Loader[userRef, *sharing.Group]
}

type loadersKey struct{}

// batchWait is how long a loader collects keys before querying; resolvers of
// one list run concurrently, so a short wait gathers the whole page (a page
// of users does not wait: prefetchUsers loads its fields at once).
const batchWait = time.Millisecond

func newLoaders(svc *domain.Domain) *loaders {
	return &loaders{
		sshKeys: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef][]*sftpaccess.SSHKey, error) {
			return byAccount(ctx, refs, svc.SFTP.SSHKeysForUsers)
		}, dataloadgen.WithWait(batchWait)),
		credentials: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef]*sftpaccess.Credentials, error) {
			return byAccount(ctx, refs, svc.SFTP.SFTPCredentialsForUsers)
		}, dataloadgen.WithWait(batchWait)),
		groups: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef]*sharing.Group, error) {
			return byAccount(ctx, refs, svc.Sharing.GroupsOfUsers)
		}, dataloadgen.WithWait(batchWait)),
		groupNames: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef]*sharing.Group, error) {
			return byAccount(ctx, refs, svc.Sharing.GroupsOfUsersUncounted)
		}, dataloadgen.WithWait(batchWait)),
		users: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef]*tenant.User, error) {
			return byAccount(ctx, refs, svc.People.UsersByID)
		}, dataloadgen.WithWait(batchWait)),
		accounts: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*tenant.Account, error) {
			out := make(map[string]*tenant.Account, len(ids))
			for _, id := range ids { // a request touches one account, two for staff screens
				a, err := svc.Accounts.Account(ctx, id)
				if err != nil {
					return nil, err
				}
				out[id] = a
			}
			return out, nil
		}, dataloadgen.WithWait(batchWait)),
	}
}

// byAccount runs one batch query per account among refs.
func byAccount[V any](ctx context.Context, refs []userRef, load func(context.Context, string, []string) (map[string]V, error)) (map[userRef]V, error) {
	ids := map[string][]string{}
	for _, r := range refs {
		ids[r.AccountID] = append(ids[r.AccountID], r.UserID)
	}
	out := make(map[userRef]V, len(refs))
	for accountID, userIDs := range ids {
		m, err := load(ctx, accountID, userIDs)
		if err != nil {
			return nil, err
		}
		for _, id := range userIDs {
			out[userRef{accountID, id}] = m[id]
		}
	}
	return out, nil
}

// withLoaders gives each request its own loaders (and so its own cache).
func (r *Resolver) withLoaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := context.WithValue(req.Context(), loadersKey{}, newLoaders(r.Tenant))
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

func (r *Resolver) loaders(ctx context.Context) *loaders {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l
	}
	return newLoaders(r.Tenant)
}

// prefetchUsers loads, at once and one batch each, the per-user fields that
// the rest of the query asks for on a page of users, and primes the loaders
// with them: the page's field resolvers then find them loaded and do not
// wait for a batch to gather, whatever the page size and however slowly they
// get scheduled. A batch that fails is left to the fields' own loads, which
// report the error on those fields only.
func (r *Resolver) prefetchUsers(ctx context.Context, users []*tenant.User) {
	if len(users) == 0 || graphql.GetFieldContext(ctx) == nil {
		return
	}
	refs := make([]userRef, len(users))
	for i, u := range users {
		refs[i] = userRef{u.AccountID, u.ID}
	}
	l := r.loaders(ctx)
	if selected(ctx, "edges", "node", "sshKeys") {
		prime(ctx, l.sshKeys, refs, r.Tenant.SFTP.SSHKeysForUsers)
	}
	if selected(ctx, "edges", "node", "sftp", "credentials") {
		prime(ctx, l.credentials, refs, r.Tenant.SFTP.SFTPCredentialsForUsers)
	}
	switch { // the loader User.group will use (groupLoader)
	case selected(ctx, "edges", "node", "group", "memberCount"):
		prime(ctx, l.groups, refs, r.Tenant.Sharing.GroupsOfUsers)
	case selected(ctx, "edges", "node", "group"):
		prime(ctx, l.groupNames, refs, r.Tenant.Sharing.GroupsOfUsersUncounted)
	}
}

// prime loads refs with load in one batch per account and caches the
// results in l.
func prime[V any](ctx context.Context, l *dataloadgen.Loader[userRef, V], refs []userRef,
	load func(context.Context, string, []string) (map[string]V, error)) {
	m, err := byAccount(ctx, refs, load)
	if err != nil {
		return
	}
	for _, ref := range refs {
		l.Prime(ref, m[ref])
	}
}

// groupLoader is the loader for a User.group field: without member counts
// unless the field asks for memberCount.
func (l *loaders) groupLoader(ctx context.Context) *dataloadgen.Loader[userRef, *sharing.Group] {
	if fc := graphql.GetFieldContext(ctx); fc != nil && selected(ctx, "memberCount") {
		return l.groups
	}
	return l.groupNames
}

// selected reports whether the current field's selection reaches the field
// path, through fragments too.
func selected(ctx context.Context, path ...string) bool {
	return selectedIn(graphql.GetOperationContext(ctx), graphql.GetFieldContext(ctx).Field.Selections, path)
}

func selectedIn(oc *graphql.OperationContext, set ast.SelectionSet, path []string) bool {
	for _, f := range graphql.CollectFields(oc, set, nil) {
		if f.Name == path[0] && (len(path) == 1 || selectedIn(oc, f.Selections, path[1:])) {
			return true
		}
	}
	return false
}
