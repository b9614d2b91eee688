package graph

import (
	"context"
	"net/http"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/skiffhq/skiff/tenant"
)

// userRef names a user within its account; loaders batch by account.
type userRef struct{ AccountID, UserID string }

// loaders batch the per-user lookups of one request into one query per kind
// (per account), so a page of users costs a constant number of statements.
type loaders struct {
	sshKeys     *dataloadgen.Loader[userRef, []*tenant.SSHKey]
	credentials *dataloadgen.Loader[userRef, *tenant.Credentials]
	accounts    *dataloadgen.Loader[string, *tenant.Account]
	groups      *dataloadgen.Loader[userRef, *tenant.Group]
}

type loadersKey struct{}

// batchWait is how long a loader collects keys before querying; resolvers of
// one list run concurrently, so a short wait gathers the whole page.
const batchWait = 500 * time.Microsecond

func newLoaders(svc *tenant.Service) *loaders {
	return &loaders{
		sshKeys: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef][]*tenant.SSHKey, error) {
			return byAccount(ctx, refs, svc.SSHKeysForUsers)
		}, dataloadgen.WithWait(batchWait)),
		credentials: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef]*tenant.Credentials, error) {
			return byAccount(ctx, refs, svc.SFTPCredentialsForUsers)
		}, dataloadgen.WithWait(batchWait)),
		groups: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef]*tenant.Group, error) {
			return byAccount(ctx, refs, svc.GroupsOfUsers)
		}, dataloadgen.WithWait(batchWait)),
		accounts: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []string) (map[string]*tenant.Account, error) {
			out := make(map[string]*tenant.Account, len(ids))
			for _, id := range ids { // a request touches one account, two for staff screens
				a, err := svc.Account(ctx, id)
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
