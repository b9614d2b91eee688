package graph_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skiffhq/skiff/graph"
)

// jsClientsDir holds the JavaScript client libraries' test: package.json
// pins them, `npm ci` there installs them (.ci/run does).
const jsClientsDir = "testdata/jsclients"

// The client libraries web and mobile teams reach for — graphql-codegen with
// the schema read from the URL, urql and Apollo Client — work against
// Skiff's handler with their default settings: codegen introspects and
// generates types, urql's default GET queries and POST mutations answer,
// Apollo's HttpLink and its persisted-query link (hash-only GET, then the
// text on PERSISTED_QUERY_NOT_FOUND) answer, and a validation error reaches
// both as a GraphQL error, not a network error.
func TestJavaScriptClientsWithDefaults(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the JavaScript client libraries cannot run")
	}
	if _, err := os.Stat(filepath.Join(jsClientsDir, "node_modules", "@apollo", "client")); err != nil {
		t.Skipf("the JavaScript client libraries are not installed: run `npm ci` in graph/%s (.ci/run does)", jsClientsDir)
	}
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.Introspection = true }) // as serve with its embedded defaults
	_, owner := e.account("Acme", "owner@acme.example")
	for _, email := range []string{"ann@acme.example", "bob@acme.example"} {
		e.user(owner, email, "USER")
	}

	// Count what the libraries sent, by method and persisted-query shape.
	var mu sync.Mutex
	seen := map[string]int{}
	api := e.srv.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method
		if r.Method == http.MethodGet && r.URL.Query().Get("query") == "" && strings.Contains(r.URL.Query().Get("extensions"), "persistedQuery") {
			key = "GET hash-only"
		}
		mu.Lock()
		seen[key]++
		mu.Unlock()
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	sdl, err := filepath.Abs("schema.graphql")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "clients.mjs")
	cmd.Dir = jsClientsDir
	cmd.Env = append(os.Environ(), "SKIFF_URL="+srv.URL+"/graphql", "SKIFF_TOKEN="+owner, "OUT_DIR="+t.TempDir(), "SCHEMA_FILE="+sdl,
		"NODE_NO_WARNINGS=1")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node clients.mjs: %v\n%s\n%s", err, out, stderr)
	}
	var report struct {
		CodegenFile, CodegenURL codegenReport
		Urql                    struct {
			Threw                   bool
			Message                 string
			PageError, CreatedError *string
			Users                   int
			CreatedEmail            string
			BadGraphQLErrors        int
			BadNetworkError         *string
		}
		Apollo struct {
			Threw        bool
			Message      string
			Users        int
			CreatedEmail string
			Bad          struct {
				Threw, GraphQLError bool
				Message             string
			}
		}
		ApolloPersisted struct {
			Threw                  bool
			Message                string
			FirstUsers, AgainUsers int
		}
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	t.Logf("report: %s; requests: %v", out, seen)

	for from, c := range map[string]codegenReport{"the committed SDL": report.CodegenFile, "the URL": report.CodegenURL} {
		if c.Threw || !c.UsersPageQuery || !c.CreateUserMutation || !c.RoleEnum {
			t.Errorf("graphql-codegen with the schema from %s: %+v", from, c)
		}
	}
	u := report.Urql
	if u.Threw || u.PageError != nil || u.Users != 3 || u.CreatedEmail != "urql@acme.example" || u.CreatedError != nil {
		t.Errorf("urql: %+v", u)
	}
	if u.BadGraphQLErrors != 1 || u.BadNetworkError != nil {
		t.Errorf("urql saw a validation error as graphQLErrors=%d networkError=%v, want one GraphQL error", u.BadGraphQLErrors, u.BadNetworkError)
	}
	a := report.Apollo
	if a.Threw || a.Users < 3 || a.CreatedEmail != "apollo@acme.example" {
		t.Errorf("Apollo Client: %+v", a)
	}
	if !a.Bad.GraphQLError || !strings.Contains(a.Bad.Message, "noSuchField") {
		t.Errorf("Apollo Client saw a validation error as %+v, want CombinedGraphQLErrors naming the field", a.Bad)
	}
	if p := report.ApolloPersisted; p.Threw || p.FirstUsers < 4 || p.AgainUsers != p.FirstUsers {
		t.Errorf("Apollo Client with persisted queries: %+v", p)
	}
	// urql sent its queries as GET (its default), Apollo's persisted-query
	// link its hashed queries as GET with the hash only.
	if seen[http.MethodGet] == 0 || seen["GET hash-only"] < 2 {
		t.Errorf("requests by kind: %v; want urql's GET queries and Apollo's hash-only GETs", seen)
	}
}

// codegenReport is what clients.mjs saw of one graphql-codegen run.
type codegenReport struct {
	Threw                                        bool
	Message                                      string
	UsersPageQuery, CreateUserMutation, RoleEnum bool
}
