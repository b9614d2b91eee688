package graph_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/graph"
)

// playgroundPage fetches /playground and the assets it names, failing the
// test unless each is served from this server with a content type.
func playgroundPage(t *testing.T, e *env) (page []byte, assets map[string][]byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/playground", nil)
	res, page := e.httpDo(req)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/playground: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Fatalf("CSP allows inline code: %q", csp)
	}
	assets = map[string][]byte{}
	for _, ref := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllSubmatch(page, -1) {
		url := string(ref[1])
		if !strings.HasPrefix(url, "/playground/assets/") {
			t.Fatalf("the page loads %q, not one of Skiff's own assets", url)
		}
		res, body := e.httpDo(mustRequest(t, http.MethodGet, e.srv.URL+url))
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") == "" {
			t.Fatalf("%s: %d %q", url, res.StatusCode, res.Header.Get("Content-Type"))
		}
		assets[url] = body
	}
	if len(assets) != 2 {
		t.Fatalf("the page names %d assets, want its script and styles:\n%s", len(assets), page)
	}
	return page, assets
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// The playground works offline: the page, its script and its styles come
// from Skiff and name no other origin, and the token stays out of the
// browser's storage unless the user opts in.
func TestPlaygroundIsSelfContained(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.Playground = true; c.Introspection = true })
	page, assets := playgroundPage(t, e)
	absolute := regexp.MustCompile(`(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name, body := range map[string][]byte{"/playground": page,
		"/playground/assets/playground.js":  assets["/playground/assets/playground.js"],
		"/playground/assets/playground.css": assets["/playground/assets/playground.css"]} {
		if body == nil {
			t.Fatalf("%s was not among the page's assets", name)
		}
		if m := absolute.Find(body); m != nil {
			t.Errorf("%s names another origin: %q", name, m)
		}
	}

	script := string(assets["/playground/assets/playground.js"])
	if !strings.Contains(script, "location.origin + '/graphql'") {
		t.Fatal("playground.js does not call this server's API")
	}
	// Storage is reached through one function, and the headers are written
	// only under the user's opt-in.
	if n := strings.Count(script, "localStorage"); n != 1 {
		t.Fatalf("playground.js names localStorage %d times; want one accessor", n)
	}
	if strings.Count(script, "setItem(") != 1 || !regexp.MustCompile(`if \(remember\.checked\) storage\.setItem\(headersKey`).MatchString(script) {
		t.Fatal("playground.js stores something other than the opted-in headers")
	}
	if strings.Contains(script, "sessionStorage") || strings.Contains(script, "document.cookie") || strings.Contains(script, "innerHTML") {
		t.Fatal("playground.js uses sessionStorage, cookies or innerHTML")
	}

	// Sent gzipped to a client that accepts it (the script is over the
	// compression threshold).
	req := mustRequest(t, http.MethodGet, e.srv.URL+"/playground/assets/playground.js")
	req.Header.Set("Accept-Encoding", "gzip")
	res, body := e.httpDo(req)
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("playground.js: Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != script {
		t.Fatal("gzipped playground.js differs from the plain one")
	}

	// Nothing else is served from the playground's folder.
	for _, url := range []string{"/playground/assets/index.html", "/playground/assets/nope.js",
		"/playground/assets/..%2fserver.go", "/playground/assets/playground.go", "/playground/other"} {
		if res, _ := e.httpDo(mustRequest(t, http.MethodGet, e.srv.URL+url)); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", url, res.StatusCode)
		}
	}
}

// The Schema pane's query runs within the API's limits and returns the
// schema; with introspection off it is refused, and the page says so.
func TestPlaygroundSchemaQuery(t *testing.T) {
	t.Parallel()
	for _, introspection := range []bool{true, false} {
		e := newEnvWith(t, func(c *graph.Config) { c.Playground = true; c.Introspection = introspection })
		_, body := e.httpDo(mustRequest(t, http.MethodGet, e.srv.URL+"/playground/assets/schema.graphql"))
		r := e.do("", string(body), nil)
		if !introspection {
			if len(r.Errors) == 0 {
				t.Fatalf("introspection off, yet the schema query answered: %s", r.Data)
			}
			continue
		}
		if len(r.Errors) > 0 {
			t.Fatalf("the schema query was refused: %+v", r.Errors)
		}
		var data struct {
			Schema struct {
				QueryType struct{ Name string }
				Types     []struct {
					Name   string
					Fields []struct {
						Name string
						Type struct {
							Kind   string
							OfType *struct{ Kind, Name string }
						}
					}
				}
			} `json:"__schema"`
		}
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, typ := range data.Schema.Types {
			found[typ.Name] = true
			if typ.Name == "User" {
				for _, f := range typ.Fields {
					if f.Name == "id" && (f.Type.Kind != "NON_NULL" || f.Type.OfType == nil || f.Type.OfType.Name != "ID") {
						t.Errorf("User.id read as %+v", f.Type)
					}
				}
			}
		}
		if data.Schema.QueryType.Name != "Query" || !found["User"] || !found["Mutation"] {
			t.Fatalf("schema: query type %q, %d types", data.Schema.QueryType.Name, len(data.Schema.Types))
		}
	}
}
