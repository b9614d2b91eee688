package graph_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/graph"
)

// httpDo sends req to the test server and returns the status, headers and
// body (not decompressed: the transport's automatic gzip is off).
func (e *env) httpDo(req *http.Request) (*http.Response, []byte) {
	e.t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, body
}

// get sends a GraphQL GET request with the parameters in the URL.
func (e *env) get(token string, params url.Values) (*http.Response, response) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/graphql?"+params.Encode(), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, body := e.httpDo(req)
	var r response
	r.status = res.StatusCode
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatalf("decode %d response %q: %v", res.StatusCode, body, err)
	}
	return res, r
}

// post sends a GraphQL POST request with body and the given Accept header.
func (e *env) post(token, accept string, body any) (*http.Response, response) {
	e.t.Helper()
	req := e.newPost(token, body)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, raw := e.httpDo(req)
	var r response
	r.status = res.StatusCode
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("decode %d response %q: %v", res.StatusCode, raw, err)
	}
	return res, r
}

// urql sends queries as GET; a mutation over GET is refused and not run.
func TestGETQueriesNeverMutations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	res, r := e.get(owner, url.Values{
		"query":     {`query V($n: Int) { viewer { __typename ... on UserViewer { account { users(first: $n) { edges { node { email } } } } } } }`},
		"variables": {`{"n": 5}`},
	})
	if res.StatusCode != http.StatusOK || len(r.Errors) != 0 || !strings.Contains(string(r.Data), "owner@acme.example") {
		t.Fatalf("GET query: %d %s %+v", res.StatusCode, r.Data, r.Errors)
	}
	res, r = e.get(owner, url.Values{"query": {`mutation { logout { ok } }`}})
	if res.StatusCode != http.StatusMethodNotAllowed || len(r.Errors) != 1 || !strings.Contains(res.Header.Get("Allow"), "POST") ||
		r.Errors[0].code() != "BAD_REQUEST" || !strings.Contains(r.Errors[0].Message, "POST") {
		t.Fatalf("GET mutation: %d (Allow %q) %+v; want 405 and one BAD_REQUEST error that says to POST", res.StatusCode, res.Header.Get("Allow"), r.Errors)
	}
	// Not run: the token still works.
	if r := e.do(owner, `{ viewer { __typename } }`, nil); r.status != http.StatusOK || len(r.Errors) != 0 {
		t.Fatalf("the GET mutation logged out: %d %+v", r.status, r.Errors)
	}
	// The operation picked by name is checked, not the first one.
	res, _ = e.get(owner, url.Values{"query": {`query Q { viewer { __typename } } mutation M { logout { ok } }`}, "operationName": {"M"}})
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET of a named mutation: %d", res.StatusCode)
	}
}

func sha256Hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// Apollo's and urql's persisted-query links: hash only, then (on
// PERSISTED_QUERY_NOT_FOUND) hash and text, then hash only again — over
// POST and over GET.
func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	for i, method := range []string{http.MethodPost, http.MethodGet} {
		query := `query Screen` + string(rune('A'+i)) + ` { viewer { ... on UserViewer { user { email } } } }`
		ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha256Hex(query)}}
		send := func(withQuery bool) response {
			t.Helper()
			if method == http.MethodPost {
				body := map[string]any{"extensions": ext}
				if withQuery {
					body["query"] = query
				}
				_, r := e.post(owner, "", body)
				return r
			}
			b, _ := json.Marshal(ext)
			params := url.Values{"extensions": {string(b)}}
			if withQuery {
				params.Set("query", query)
			}
			_, r := e.get(owner, params)
			return r
		}
		r := send(false)
		if r.status != http.StatusOK || len(r.Errors) != 1 || r.Errors[0].code() != "PERSISTED_QUERY_NOT_FOUND" ||
			r.Errors[0].Message != "PersistedQueryNotFound" {
			t.Fatalf("%s hash only, unknown: %d %+v", method, r.status, r.Errors)
		}
		for _, withQuery := range []bool{true, false} {
			r = send(withQuery)
			if r.status != http.StatusOK || len(r.Errors) != 0 || !strings.Contains(string(r.Data), "owner@acme.example") {
				t.Fatalf("%s (query sent: %v): %d %s %+v", method, withQuery, r.status, r.Data, r.Errors)
			}
		}
	}
	// A hash that is not the query's is refused, and nothing is stored under it.
	query := `{ viewer { __typename } }`
	bad := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha256Hex("something else")}}
	if _, r := e.post(owner, "", map[string]any{"query": query, "extensions": bad}); len(r.Errors) != 1 {
		t.Fatalf("wrong hash accepted: %+v", r.Errors)
	}
	if _, r := e.post(owner, "", map[string]any{"extensions": bad}); len(r.Errors) != 1 || r.Errors[0].code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("wrong hash stored: %+v", r.Errors)
	}
	// A persisted query is still held to the cost limits when run by hash.
	e2 := newEnvWith(t, func(c *graph.Config) { c.MaxDepth = 3 })
	_, owner2 := e2.account("Beta", "owner@beta.example")
	deep := `{ viewer { ... on UserViewer { user { account { name } } } } }`
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha256Hex(deep)}}
	for range 2 {
		if _, r := e2.post(owner2, "", map[string]any{"query": deep, "extensions": ext}); len(r.Errors) != 1 || r.Errors[0].code() != "QUERY_TOO_DEEP" {
			t.Fatalf("deep persisted query: %+v", r.Errors)
		}
		if _, r := e2.post(owner2, "", map[string]any{"extensions": ext}); len(r.Errors) != 1 || r.Errors[0].code() != "QUERY_TOO_DEEP" &&
			r.Errors[0].code() != "PERSISTED_QUERY_NOT_FOUND" {
			t.Fatalf("deep persisted query by hash: %+v", r.Errors)
		}
	}
}

// Responses over 1 KiB are gzipped for clients that accept it; small ones are not.
func TestCompressedResponses(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.Introspection = true })
	body, _ := json.Marshal(map[string]any{"query": `{ __schema { types { name description fields { name description } } } }`})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Encoding", "gzip")
	res, zipped := e.httpDo(req)
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("not gzipped: %d %q", res.StatusCode, res.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var r response
	if err := json.Unmarshal(plain, &r); err != nil || len(r.Errors) != 0 || !strings.Contains(string(r.Data), `"UserViewer"`) {
		t.Fatalf("decoded body: %v %+v", err, r.Errors)
	}
	t.Logf("schema types: %d bytes, %d gzipped", len(plain), len(zipped))
	if len(zipped)*3 > len(plain) {
		t.Fatalf("gzip saved little: %d of %d bytes", len(zipped), len(plain))
	}
	// zstd when the client prefers it.
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Encoding", "zstd, gzip")
	if res, _ := e.httpDo(req); res.Header.Get("Content-Encoding") != "zstd" {
		t.Fatalf("zstd not chosen: %q", res.Header.Get("Content-Encoding"))
	}
	// A client that takes brotli only gets the response as is, not an error.
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Encoding", "br")
	if res, raw := e.httpDo(req); res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "" || !bytes.Contains(raw, []byte(`"UserViewer"`)) {
		t.Fatalf("br only: %d %q", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	// A small response is sent as is.
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/graphql?query="+url.QueryEscape(`{ viewer { __typename } }`), nil)
	req.Header.Set("Accept-Encoding", "gzip")
	if res, small := e.httpDo(req); res.Header.Get("Content-Encoding") != "" || !bytes.Contains(small, []byte(`"viewer"`)) {
		t.Fatalf("small response: %q %s", res.Header.Get("Content-Encoding"), small)
	}
}

// A browser on an allowed origin passes the preflight of Apollo Client's
// headers and a GET, and may read X-Request-ID.
func TestCORSForBrowserClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	preflight := func(origin, method, headers string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", headers)
		res, _ := e.httpDo(req)
		return res
	}
	// As browsers send it: lower case, sorted (Fetch standard).
	apollo := "apollographql-client-name,apollographql-client-version,authorization,content-type,x-request-id"
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		res := preflight("https://admin.example", method, apollo)
		if res.StatusCode/100 != 2 || res.Header.Get("Access-Control-Allow-Origin") != "https://admin.example" {
			t.Fatalf("%s preflight: %d %q", method, res.StatusCode, res.Header)
		}
		allowed := strings.ToLower(strings.Join(res.Header.Values("Access-Control-Allow-Headers"), ","))
		for _, h := range strings.Split(apollo, ",") {
			if !strings.Contains(allowed, h) {
				t.Fatalf("%s preflight does not allow %s: %q", method, h, allowed)
			}
		}
	}
	if res := preflight("https://evil.example", http.MethodPost, "authorization"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin allowed: %q", res.Header)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/graphql?query="+url.QueryEscape(`{ viewer { __typename } }`), nil)
	req.Header.Set("Origin", "https://admin.example")
	res, _ := e.httpDo(req)
	if res.Header.Get("Access-Control-Allow-Origin") != "https://admin.example" ||
		!strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") && !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Fatalf("GET from the origin: %q", res.Header)
	}

	// The allowed headers are configurable.
	e2 := newEnvWith(t, func(c *graph.Config) { c.CORSHeaders = []string{"Authorization", "X-Custom"} })
	req, _ = http.NewRequest(http.MethodOptions, e2.srv.URL+"/graphql", nil)
	req.Header.Set("Origin", "https://admin.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "x-custom")
	if res, _ := e2.httpDo(req); res.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("configured header refused: %d %q", res.StatusCode, res.Header)
	}
	req.Header.Set("Access-Control-Request-Headers", "apollographql-client-name")
	if res, _ := e2.httpDo(req); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("unconfigured header allowed: %q", res.Header)
	}
}

// GraphQL-over-HTTP: a request error is 200 as application/json (what
// Apollo Client 3 and Relay ask for), and 400 as
// application/graphql-response+json (what urql and Apollo Client 4 prefer);
// both carry the errors.
func TestRequestErrorStatusAndContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	for _, c := range []struct {
		accept, contentType string
		status              int
	}{
		{"", "application/json", http.StatusOK},
		{"*/*", "application/json", http.StatusOK},
		{"application/json", "application/json", http.StatusOK},
		{"application/graphql-response+json, application/json;q=0.9", "application/graphql-response+json", http.StatusBadRequest},
	} {
		for name, query := range map[string]string{"validation": `{ viewer { nope } }`, "syntax": `{ viewer {`, "QUERY_TOO_DEEP": deepQuery} {
			res, r := e.post(owner, c.accept, map[string]any{"query": query})
			if res.StatusCode != c.status || !strings.HasPrefix(res.Header.Get("Content-Type"), c.contentType) || len(r.Errors) == 0 ||
				strings.HasPrefix(name, "QUERY") && r.Errors[0].code() != name {
				t.Errorf("%s error, Accept %q: %d %q %+v; want %d %s", name, c.accept, res.StatusCode,
					res.Header.Get("Content-Type"), r.Errors, c.status, c.contentType)
			}
		}
	}
	// A field error is 200 either way.
	res, r := e.post(owner, "application/graphql-response+json", map[string]any{"query": `{ node(id: "bogus") { id } }`})
	if res.StatusCode != http.StatusOK || r.Data == nil {
		t.Fatalf("field error: %d %+v", res.StatusCode, r)
	}
}

// standardIntrospectionQuery is the introspection query of the GraphQL
// spec's __Schema, __Type, __Field, __InputValue, __EnumValue and
// __Directive types as schema tools send it: every type in full, with type
// references unwrapped nine wrappers deep (15 levels in all).
const standardIntrospectionQuery = `
query IntrospectionQuery {
  __schema {
    description
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}

fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}

fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType { kind name }
                }
              }
            }
          }
        }
      }
    }
  }
}
`

// deepQuery selects data 15 levels deep, over the depth limit of 12.
const deepQuery = `{ viewer { ... on UserViewer { user { account { users { edges { node { account { users { edges { node {
	account { users { edges { node { id } } } } } } } } } } } } } } } }`

// graphql-codegen, GraphiQL and the other schema tools read the schema
// with the standard introspection query, deeper than the depth limit.
func TestStandardIntrospectionQuery(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.Introspection = true })
	var out struct {
		Schema struct {
			QueryType struct{ Name string }
			Types     []struct{ Name string }
		} `json:"__schema"`
	}
	e.mustDo("", standardIntrospectionQuery, nil, &out)
	if out.Schema.QueryType.Name != "Query" || len(out.Schema.Types) < 50 {
		t.Fatalf("introspection: %+v", out.Schema.QueryType)
	}
	// The exemption is for introspection only: data as deep is refused, also
	// next to __schema.
	e.mustFail("", deepQuery, nil, "QUERY_TOO_DEEP")
	e.mustFail("", strings.Replace(deepQuery, "{ viewer", "{ __schema { description } viewer", 1), nil, "QUERY_TOO_DEEP")
	// Still bounded: nesting past the introspection depth is refused.
	tooDeep := "{ __schema { types { " + strings.Repeat("ofType { ", 30) + "name" + strings.Repeat(" }", 30) + " } } }"
	e.mustFail("", tooDeep, nil, "QUERY_TOO_DEEP")
}

// A request that is wrong as an HTTP request, not in its GraphQL document,
// answers a GraphQL error with the code BAD_REQUEST and a status that says
// what is wrong; the body sent is not echoed back.
func TestMalformedRequestsAreBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret := "hunter2-" + strings.Repeat("s", 20)
	cases := []struct {
		name, method, contentType, body string
		status                          int
	}{
		{"a body that is not JSON", http.MethodPost, "application/json", `{"query": "mutation { login(input: {password: \"` + secret + `\"`, http.StatusBadRequest},
		{"a batch", http.MethodPost, "application/json", `[{"query": "{ __typename }", "variables": {"p": "` + secret + `"}}]`, http.StatusBadRequest},
		{"plain text", http.MethodPost, "text/plain", `{"query": "{ __typename }"}`, http.StatusUnsupportedMediaType},
		{"a form", http.MethodPost, "application/x-www-form-urlencoded", `query=%7B__typename%7D`, http.StatusUnsupportedMediaType},
		{"PUT", http.MethodPut, "application/json", `{"query": "{ __typename }"}`, http.StatusMethodNotAllowed},
		{"an unsupported persisted-query version", http.MethodPost, "application/json",
			`{"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "abc"}}}`, http.StatusOK},
		{"a persisted query whose hash is not its text's", http.MethodPost, "application/json",
			`{"query": "{ __typename }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "` + sha256Hex("{ viewer { __typename } }") + `"}}}`, http.StatusOK},
	}
	// To a client that accepts application/graphql-response+json, a request
	// that fails before it runs is a 400 (the GraphQL-over-HTTP spec).
	accept := make([]string, len(cases))
	for _, c := range cases {
		if c.status == http.StatusOK {
			c.name += ", graphql-response+json"
			c.status = http.StatusBadRequest
			cases = append(cases, c)
			accept = append(accept, "application/graphql-response+json")
		}
	}
	for i, c := range cases {
		req, _ := http.NewRequest(c.method, e.srv.URL+"/graphql", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.contentType)
		if accept[i] != "" {
			req.Header.Set("Accept", accept[i])
		}
		res, body := e.httpDo(req)
		var r response
		if err := json.Unmarshal(body, &r); err != nil {
			t.Errorf("%s: %d, not JSON: %s", c.name, res.StatusCode, body)
			continue
		}
		if res.StatusCode != c.status || len(r.Errors) != 1 || r.Errors[0].code() != "BAD_REQUEST" || r.Errors[0].Message == "" {
			t.Errorf("%s: %d %s, want %d and one BAD_REQUEST error", c.name, res.StatusCode, body, c.status)
		}
		if strings.Contains(string(body), secret) || strings.Contains(string(body), "graphql.RawParams") {
			t.Errorf("%s: the answer echoes the request or Go's types: %s", c.name, body)
		}
		if c.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, POST" {
			t.Errorf("%s: Allow %q", c.name, res.Header.Get("Allow"))
		}
	}
}
