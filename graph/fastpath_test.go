package graph_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/graph/generated"
)

// The fast paths graph/gqlgen_gen.go writes into the generated code (leaf
// fields marshalled straight from their Go fields, objects written without
// gqlgen's FieldSet) answer byte for byte what gqlgen's own code answers,
// with less work: pages of users and folders, the schema by introspection,
// fragments and aliases, nulls and errors at their paths.
func TestFastPathsAnswerAsGqlgen(t *testing.T) {
	e := newEnvWith(t, func(c *graph.Config) { c.Introspection = true })
	s := seedSharing(e, 30, 30)
	support := e.staff("support@skiff.example")
	queries := []struct {
		name, token, query string
	}{
		{"users page", s.owner, `{ account { users(first: 20) { totalCount edges { cursor node {
			id email name role createdAt updatedAt deletedAt invitationPending lastLoginAt lastApiLoginAt
			group { id name builtin default jailed memberCount createdAt } sftp { enabled } storage { used quota }
			projectsSharedWithMe(first: 5) { edges { preset rights node { id name createdAt } } pageInfo { hasNextPage } } } }
			pageInfo { startCursor endCursor hasNextPage hasPreviousPage } } } }`},
		{"folders page", s.owner, `{ account { projectFolders(first: 30) { edges { node {
			id name createdAt updatedAt myRights createdBy { id name email }
			members { preset sharedAt user { id name } group { id name } } } }
			pageInfo { endCursor hasNextPage } } } }`},
		{"a plain user's view", s.viewer, `{ viewer { __typename ... on UserViewer { can { manageUsers manageGroups createProjectFolders manageContacts }
			user { id name email role account { name } projectsSharedWithMe(first: 10) { edges { preset rights node { name myRights } } } } } } }`},
		{"aliases and fragments", s.owner, `query { a: account { ...A n: name } b: account { name id } account { name } account { id ...A } }
			fragment A on Account { name requireTotpForAdmins createdAt }`},
		{"fields a role may not see", support, `{ accounts(first: 5) { edges { node { name users(first: 3) { edges { node { name email } } } groups(first: 2) { edges { node { name } } } } } } }`},
		{"a missing object", s.owner, `{ node(id: "VXNlcjowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=") { id ... on User { name } }
			account { name users(first: 2) { edges { node { name } } } } }`},
		{"introspection", s.owner, standardIntrospectionQuery},
	}
	for _, q := range queries {
		fast := rawAnswer(t, e, q.token, q.query)
		generated.SetSlowPaths(true)
		slow := rawAnswer(t, e, q.token, q.query)
		generated.SetSlowPaths(false)
		if !bytes.Equal(fast, slow) {
			t.Errorf("%s: the fast paths answer\n%s\ngqlgen answers\n%s", q.name, fast, slow)
		}
		if len(fast) < 100 || !bytes.Contains(fast, []byte(`"data":{`)) {
			t.Errorf("%s: answered only %s", q.name, fast)
		}
	}

	// And they do less: the folders page, fixed costs and all, allocates at
	// least an eighth less (about a fifth less when written; a fast path not
	// taken would leave it as it was).
	page := queries[1].query
	allocs := func() uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 5 {
			rawAnswer(t, e, s.owner, page)
		}
		runtime.ReadMemStats(&after)
		return after.Mallocs - before.Mallocs
	}
	fast := allocs()
	generated.SetSlowPaths(true)
	slow := allocs()
	generated.SetSlowPaths(false)
	t.Logf("the folders page allocated %d times with the fast paths, %d without", fast, slow)
	if fast*8 > slow*7 {
		t.Errorf("the folders page allocated %d times with the fast paths, %d without", fast, slow)
	}
}

// rawAnswer is the response's body, as sent (uncompressed).
func rawAnswer(t *testing.T, e *env, token, query string) []byte {
	t.Helper()
	req := e.newPost(token, map[string]any{"query": query})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v: %s", res.StatusCode, err, body)
	}
	return body
}

// fieldCounter is an extension that intercepts fields.
type fieldCounter struct{}

func (fieldCounter) ExtensionName() string                   { return "field-counter" }
func (fieldCounter) Validate(graphql.ExecutableSchema) error { return nil }
func (fieldCounter) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	return next(ctx)
}

// The fast paths skip field middleware, so the handler has none: an
// extension that intercepts fields is refused.
func TestFieldInterceptorsAreRefused(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a field interceptor was accepted")
		}
	}()
	graph.UseExtension(handler.New(generated.NewExecutableSchema(generated.Config{})), fieldCounter{})
}

// A list whose elements select only fields that cannot wait is marshalled
// without a goroutine per element; one whose elements select a field with
// a resolver keeps gqlgen's goroutines, so that no element waits for
// another's data-loader batch.
//
// Not parallel: the count is the whole process's.
func TestListsThatCannotWaitStartNoGoroutines(t *testing.T) {
	e := newEnv(t)
	s := seedSharing(e, 12, 12)
	started := func(query string) uint64 { return leastOf5(e, s.owner, query, goroutinesCreated) }
	page := func(field string) string {
		return `{ account { projectFolders(first: 20) { edges { node { name createdBy { name } ` + field + ` } } } } }`
	}
	// Rows of two fields with resolvers each, the second without a list
	// of objects (myRights is written in one pass).
	plain := started(page(`myRights`))
	withUsers := started(page(`members { preset sharedAt user { id name } group { id name } }`))
	waiting := started(page(`members { preset sharedAt user { id name lastLoginAt } group { id name } }`))
	// Fewer than one more per row (the members' loader has a few of its own).
	if withUsers >= plain+12 {
		t.Errorf("members with their users' names started %d goroutines, %d without members", withUsers, plain)
	}
	// Every folder has members with a user (seedSharing shares each folder
	// with three users).
	if waiting < withUsers+12 {
		t.Errorf("members with a field that may wait started %d goroutines, %d without: no goroutine per member", waiting, withUsers)
	}
}
