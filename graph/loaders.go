package graph

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"

	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sharing"
	"github.com/skiffhq/skiff/tenant/storageuse"
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
	storage    *dataloadgen.Loader[userRef, *storageuse.Storage]

	// The viewer's rights in project folders and their members, by folder ID.
	myRights      *dataloadgen.Loader[string, []policy.Right]
	folderMembers *dataloadgen.Loader[string, []*sharing.FolderMember]
	// Nested connections: one per row, every row with the same page.
	sharedWith   *dataloadgen.Loader[pagedRef, *tenant.Connection[*sharing.SharedProject]]
	groupMembers *dataloadgen.Loader[pagedRef, *tenant.Connection[*tenant.User]]
	folderShares *dataloadgen.Loader[pagedRef, *tenant.Connection[*sharing.FolderMember]]
	loginTimes   *dataloadgen.Loader[userRef, *people.LoginTimes] // see facts.go
	acct         accountLoaders                                   // see accountloaders.go
}

// pagedRef is one row's nested connection: the row's ID and the page and
// order asked for. Rows asking for the same page are loaded in one batch.
type pagedRef struct {
	ID    string
	Page  tenant.Page
	Order tenant.Order
}

// pageReq is a nested connection's page and order, as a query asks for it.
type pageReq struct {
	Page  tenant.Page
	Order tenant.Order
}

type loadersKey struct{}

// batchWait is how long a loader collects keys before querying; resolvers of
// one list run concurrently, so a short wait gathers the whole page (a page
// of users does not wait: prefetchUsers loads its fields at once).
const batchWait = time.Millisecond

func newLoaders(svc *domain.Domain) *loaders {
	return &loaders{
		loginTimes: newLoginTimesLoader(svc),
		acct:       newAccountLoaders(svc),
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
		storage: dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef]*storageuse.Storage, error) {
			return byAccount(ctx, refs, svc.Storage.UserStorageOf)
		}, dataloadgen.WithWait(batchWait)),
		accounts: dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]*tenant.Account, []error) {
			m, err := svc.Accounts.AccountsByID(ctx, ids)
			return perKey(ids, m, nil, err, func(string) error { return tenant.NotFound("account") })
		}, dataloadgen.WithWait(batchWait)),
		myRights: dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([][]policy.Right, []error) {
			m, err := svc.Sharing.MyRightsInFolders(ctx, ids)
			return perKey(ids, m, nil, err, nil)
		}, dataloadgen.WithWait(batchWait)),
		folderMembers: dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([][]*sharing.FolderMember, []error) {
			m, refused, err := svc.Sharing.FolderMembersOf(ctx, ids, sharesBound(ctx, len(ids)))
			return perKey(ids, m, refused, err, nil)
		}, dataloadgen.WithWait(batchWait)),
		sharedWith:   dataloadgen.NewLoader(byPage(svc.Sharing.ProjectsSharedWithUsers), dataloadgen.WithWait(batchWait)),
		groupMembers: dataloadgen.NewLoader(byPage(svc.Sharing.GroupMembersOf), dataloadgen.WithWait(batchWait)),
		folderShares: dataloadgen.NewLoader(byPage(svc.Sharing.FolderSharesOf), dataloadgen.WithWait(batchWait)),
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

// perKey turns a batch's answer into a loader's: each key's value, or the
// error its row was refused with; a key absent from m gets missing(key) when
// missing is given, the zero value otherwise.
func perKey[V any](keys []string, m map[string]V, refused map[string]error, err error, missing func(string) error) ([]V, []error) {
	vals, errs := make([]V, len(keys)), make([]error, len(keys))
	for i, k := range keys {
		v, ok := m[k]
		switch {
		case err != nil:
			errs[i] = err
		case refused[k] != nil:
			errs[i] = refused[k]
		case !ok && missing != nil:
			errs[i] = missing(k)
		default:
			vals[i] = v
		}
	}
	return vals, errs
}

// byPage loads rows' nested connections, one batch per page asked for (a
// query asks for one, or a few with aliases).
func byPage[V any](load func(context.Context, []string, tenant.Order, tenant.Page) (map[string]V, sharing.Refused, error)) func(context.Context, []pagedRef) ([]V, []error) {
	return func(ctx context.Context, refs []pagedRef) ([]V, []error) {
		vals, errs := make([]V, len(refs)), make([]error, len(refs))
		rows := map[pageReq][]int{}
		for i, r := range refs {
			rows[pageReq{r.Page, r.Order}] = append(rows[pageReq{r.Page, r.Order}], i)
		}
		for pg, at := range rows {
			ids := make([]string, len(at))
			for j, i := range at {
				ids[j] = refs[i].ID
			}
			m, refused, err := load(ctx, ids, pg.Order, pg.Page)
			v, e := perKey(ids, m, refused, err, nil)
			for j, i := range at {
				vals[i], errs[i] = v[j], e[j]
			}
		}
		return vals, errs
	}
}

// withLoaders gives each request its own loaders (and so its own cache).
func (r *Resolver) withLoaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := context.WithValue(req.Context(), loadersKey{}, newLoaders(r.Tenant))
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// mutationLoaders gives each mutation of a request loaders of its own, so a
// mutation's payload never shows what an earlier mutation of the same
// request loaded before its change.
func (r *Resolver) mutationLoaders(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	if graphql.GetOperationContext(ctx).Operation.Operation == ast.Mutation {
		ctx = context.WithValue(ctx, loadersKey{}, newLoaders(r.Tenant))
	}
	return next(ctx)
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
	if selected(ctx, "edges", "node", "storage") {
		prime(ctx, l.storage, refs, r.Tenant.Storage.UserStorageOf)
	}
	if selected(ctx, "edges", "node", "sshKeys", "user") {
		prime(ctx, l.users, refs, r.Tenant.People.UsersByID)
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	for _, pg := range pagesAt(ctx, "edges", "node", "projectsSharedWithMe") {
		shared := primePaged(ctx, l.sharedWith, ids, pg, r.Tenant.Sharing.ProjectsSharedWithUsers)
		var folders []*sharing.ProjectFolder
		for _, c := range shared {
			for _, p := range c.Items {
				folders = append(folders, p.Folder)
			}
		}
		r.prefetchFolders(ctx, folders, "edges", "node", "projectsSharedWithMe", "edges", "node")
	}
}

// prefetchFolders is prefetchUsers for a list of project folders, found at
// path (under the current field) in the query: the viewer's rights in them,
// their members, each page of shares asked for, and their creators.
func (r *Resolver) prefetchFolders(ctx context.Context, folders []*sharing.ProjectFolder, path ...string) {
	if len(folders) == 0 || graphql.GetFieldContext(ctx) == nil {
		return
	}
	l := r.loaders(ctx)
	ids := make([]string, len(folders))
	creators := make([]userRef, len(folders))
	for i, f := range folders {
		ids[i] = f.ID
		creators[i] = userRef{f.AccountID, f.CreatedBy}
	}
	at := func(field ...string) []string { return append(slices.Clone(path), field...) }
	if selected(ctx, at("myRights")...) {
		if m, err := r.Tenant.Sharing.MyRightsInFolders(ctx, ids); err == nil {
			for _, id := range ids {
				l.myRights.Prime(id, m[id])
			}
		}
	}
	if selected(ctx, at("members")...) {
		if m, refused, err := r.Tenant.Sharing.FolderMembersOf(ctx, ids, sharesBound(ctx, len(ids))); err == nil {
			for _, id := range ids {
				if refused[id] == nil { // refused rows load their error themselves, without a statement
					l.folderMembers.Prime(id, m[id])
				}
			}
		}
	}
	for _, pg := range pagesAt(ctx, at("shares")...) {
		primePaged(ctx, l.folderShares, ids, pg, r.Tenant.Sharing.FolderSharesOf)
	}
	if selected(ctx, at("createdBy")...) {
		prime(ctx, l.users, creators, r.Tenant.People.UsersByID)
	}
}

// prefetchGroups loads, at once, the members of a page of groups for each
// page of members the query asks for.
func (r *Resolver) prefetchGroups(ctx context.Context, groups []*sharing.Group) {
	if len(groups) == 0 || graphql.GetFieldContext(ctx) == nil {
		return
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	for _, pg := range pagesAt(ctx, "edges", "node", "members") {
		primePaged(ctx, r.loaders(ctx).groupMembers, ids, pg, r.Tenant.Sharing.GroupMembersOf)
	}
}

// primePaged loads the rows' nested connections for one page in one batch
// and caches them in l; it returns them (none if the batch failed: the
// fields then load, and report, their own).
func primePaged[V any](ctx context.Context, l *dataloadgen.Loader[pagedRef, V], ids []string, pg pageReq,
	load func(context.Context, []string, tenant.Order, tenant.Page) (map[string]V, sharing.Refused, error)) map[string]V {
	m, refused, err := load(ctx, ids, pg.Order, pg.Page)
	if err != nil {
		return nil
	}
	for _, id := range ids {
		if refused[id] == nil {
			l.Prime(pagedRef{id, pg.Page, pg.Order}, m[id])
		}
	}
	return m
}

// pagesAt returns the pages (first, after) that the fields at path ask for:
// one per alias with different arguments. Arguments it cannot read are left
// to the field's own load.
func pagesAt(ctx context.Context, path ...string) []pageReq {
	var pages []pageReq
	for _, f := range fieldPagesAt(ctx, path...) {
		if !slices.Contains(pages, f.pageReq) {
			pages = append(pages, f.pageReq)
		}
	}
	return pages
}

// fieldPage is the page one field at a path asks for, with all its arguments.
type fieldPage struct {
	pageReq
	Args map[string]any
}

// fieldPagesAt is pagesAt with each field's arguments, one per field.
func fieldPagesAt(ctx context.Context, path ...string) []fieldPage {
	oc := graphql.GetOperationContext(ctx)
	var pages []fieldPage
	for _, f := range fieldsAt(oc, graphql.GetFieldContext(ctx).Field.Selections, path) {
		args := f.ArgumentMap(oc.Variables)
		first, ok := intArg(args["first"])
		last, ok2 := intArg(args["last"])
		after, ok3 := args["after"].(string)
		before, ok4 := args["before"].(string)
		o, ok5 := orderArg(args["orderBy"])
		if !ok || !ok2 || (!ok3 && args["after"] != nil) || (!ok4 && args["before"] != nil) || !ok5 {
			continue
		}
		pg := pageReq{tenant.Page{First: pageSize(first), After: after, Last: pageSize(last), Before: before}, o}
		// As connPage asks: the count only when the connection's totalCount is selected.
		for _, sel := range graphql.CollectFields(oc, f.Selections, nil) {
			pg.Page.Count = pg.Page.Count || sel.Name == "totalCount"
		}
		pages = append(pages, fieldPage{pg, args})
	}
	return pages
}

// orderArg reads an optional orderBy argument as order reads the generated
// input: its field, and its direction (ASC, the default of the inputs of
// the nested connections loaded in batches, when absent).
func orderArg(v any) (tenant.Order, bool) {
	if v == nil {
		return tenant.Order{}, true
	}
	m, ok := v.(map[string]any)
	field, ok2 := m["field"].(string)
	dir, ok3 := m["direction"].(string)
	if !ok || !ok2 || (!ok3 && m["direction"] != nil) {
		return tenant.Order{}, false
	}
	return tenant.Order{Field: field, Desc: dir == string(model.OrderDirectionDesc)}, true
}

// intArg reads an optional Int argument (nil when absent) as gqlparser
// gives it: from the query's text or from a JSON variable.
func intArg(v any) (*int, bool) {
	var i int
	switch n := v.(type) {
	case nil:
		return nil, true
	case int:
		i = n
	case int64:
		i = int(n)
	case float64:
		i = int(n)
		if n != float64(i) {
			return nil, false
		}
	case json.Number:
		n64, err := n.Int64()
		if err != nil {
			return nil, false
		}
		i = int(n64)
	default:
		return nil, false
	}
	return &i, true
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
	return len(fieldsAt(oc, set, path)) > 0
}

// fieldsAt returns the fields that the selection set reaches at path, every
// alias of them, through fragments too.
func fieldsAt(oc *graphql.OperationContext, set ast.SelectionSet, path []string) []graphql.CollectedField {
	var out []graphql.CollectedField
	for _, f := range graphql.CollectFields(oc, set, nil) {
		switch {
		case f.Name != path[0]:
		case len(path) == 1:
			out = append(out, f)
		default:
			out = append(out, fieldsAt(oc, f.Selections, path[1:])...)
		}
	}
	return out
}
