package graph_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/graph"
)

// documentedCodes reads the two code tables of docs/GRAPHQL.md's "Mutations,
// payloads and errors": the user-error codes (the first table) and the
// GraphQL error codes (`extensions.code`, the second), each with the HTTP
// status its row names ("HTTP 503: …"; 0 when it names none).
func documentedCodes(t *testing.T) (userCodes []string, gqlCodes map[string]int) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "GRAPHQL.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "## Mutations, payloads and errors")
	end := strings.Index(text[start:], "\n## ") // the next section
	if start < 0 || end < 0 {
		t.Fatal(`docs/GRAPHQL.md has no "## Mutations, payloads and errors" section`)
	}
	section := text[start : start+end]
	code := regexp.MustCompile("`([A-Z_]+)`")
	status := regexp.MustCompile(`^\s*HTTP (\d{3}):`)
	table := 0
	gqlCodes = map[string]int{}
	inTable := false
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		if !inTable {
			inTable = true
			table++
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			switch table {
			case 1:
				userCodes = append(userCodes, m[1])
			case 2:
				gqlCodes[m[1]] = 0
				if s := status.FindStringSubmatch(cells[2]); s != nil {
					gqlCodes[m[1]] = atoi(t, s[1])
				}
			}
		}
	}
	if table != 2 {
		t.Fatalf("want 2 code tables in the section, found %d", table)
	}
	return userCodes, gqlCodes
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// The user-error codes docs/GRAPHQL.md lists are exactly the schema's
// UserErrorCode values.
func TestDocumentedUserErrorCodes(t *testing.T) {
	t.Parallel()
	documented, _ := documentedCodes(t)
	schema := committedSchema(t)
	var inSchema []string
	for _, v := range schema.Types["UserErrorCode"].EnumValues {
		inSchema = append(inSchema, v.Name)
	}
	sort.Strings(documented)
	sort.Strings(inSchema)
	if !slices.Equal(documented, inSchema) {
		t.Errorf("docs/GRAPHQL.md lists user-error codes %v; the schema has %v", documented, inSchema)
	}
}

// Every GraphQL error code docs/GRAPHQL.md lists is one the API answers, with
// the HTTP status the docs give it: each is provoked here (or, where it needs
// a draining server or a concurrent flood, by the test named), and no code
// the API answers in these requests is missing from the docs.
func TestDocumentedErrorCodes(t *testing.T) {
	t.Parallel()
	_, documented := documentedCodes(t)
	e := newEnvWith(t, func(c *graph.Config) { c.MaxDepth, c.MaxTokens, c.MaxComplexity = 5, 400, 500 })
	_, owner := e.account("Acme", "owner@acme.example")
	_, user := e.user(owner, "ann@acme.example", "USER")
	tight := newEnvWith(t, func(c *graph.Config) { c.MaxResponseBytes, c.MaxBodyBytes = 300, 2000 })
	_, tightOwner := tight.account("Tight", "owner@tight.example")

	// Each request answers the code it is named by, and nothing else.
	type answer struct {
		status int
		codes  []string
	}
	codesOf := func(status int, r response) answer {
		a := answer{status: status}
		for _, err := range r.Errors {
			a.codes = append(a.codes, err.code())
		}
		return a
	}
	post := func(e *env, token, query string) answer { r := e.do(token, query, nil); return codesOf(r.status, r) }
	deep := "{ account { users { edges { node { group { members { edges { node { id } } } } } } } } }"
	provoke := map[string]func() answer{
		"UNAUTHENTICATED": func() answer { return post(e, "not-a-token", "{ viewer { __typename } }") },
		"FORBIDDEN": func() answer {
			return post(e, user, `mutation { createUser(input: {email: "x@acme.example", name: "X"}) { user { id } } }`)
		},
		"NOT_FOUND": func() answer {
			return post(e, owner, `mutation { deleteGroup(input: {id: "R3JvdXA6MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw"}) { deletedGroupId } }`)
		},
		"BAD_USER_INPUT": func() answer { return post(e, owner, "{ account { users(first: 100000) { edges { cursor } } } }") },
		"QUERY_TOO_LARGE": func() answer {
			return post(e, owner, "{ viewer { __typename "+strings.Repeat("__typename ", 500)+"} }")
		},
		"QUERY_TOO_DEEP": func() answer { return post(e, owner, deep) },
		"COMPLEXITY_LIMIT_EXCEEDED": func() answer {
			return post(e, owner, "{ account { users(first: 200) { edges { node { id name email role } } } } }")
		},
		"RESPONSE_TOO_LARGE": func() answer {
			return post(tight, tightOwner, `{ account { users { edges { node { id name email role group { name } } } } }
				viewer { ... on UserViewer { user { id name email role } account { name } } } }`)
		},
		"INTROSPECTION_DISABLED": func() answer { return post(e, owner, "{ __schema { types { name } } }") },
		"REQUEST_TOO_LARGE": func() answer {
			return post(tight, tightOwner, "{ viewer { __typename } } # "+strings.Repeat("x", 3000))
		},
		"PERSISTED_QUERY_NOT_FOUND": func() answer {
			res, r := e.get(owner, url.Values{"extensions": {`{"persistedQuery":{"version":1,"sha256Hash":"` + sha256Hex("{ viewer { __typename } } #new") + `"}}`}})
			return codesOf(res.StatusCode, r)
		},
		"GRAPHQL_PARSE_FAILED":      func() answer { return post(e, owner, "{ viewer { ") },
		"GRAPHQL_VALIDATION_FAILED": func() answer { return post(e, owner, "{ noSuchField }") },
	}
	// Codes that need more than one request here can make.
	elsewhere := map[string]string{
		"INTERNAL":      "TestInternalErrorBeforeGraphQLIsLogged",
		"SHUTTING_DOWN": "TestServeSignals",
		// The client that could read it has gone.
		"CANCELED": "TestAClientThatLeftIsNoInternalError",
		// Needs a request held up past a timeout: a table lock there.
		"TIMEOUT":           "TestARequestIsStoppedAtItsTimeout",
		"TOO_MANY_REQUESTS": "TestInFlightCapPerAddress",
		// Answered by cmd/skiff's listener, before the API sees a request.
		"TOO_MANY_CONNECTIONS": "TestHTTPConnectionCapPerAddress",
		// Over the old code the request waited for an event: that test
		// bounds the wait.
		"SUBSCRIPTION_NEEDS_WEBSOCKET": "TestSubscriptionOverHTTPIsRefusedAtOnce",
		// Several statuses, each checked there.
		"BAD_REQUEST": "TestMalformedRequestsAreBadRequests",
	}

	for code, wantStatus := range documented {
		if test, ok := elsewhere[code]; ok {
			if !testExists(t, test) {
				t.Errorf("%s: the test said to cover it, %s, does not exist", code, test)
			}
			continue
		}
		p, ok := provoke[code]
		if !ok {
			t.Errorf("docs/GRAPHQL.md documents %s, which this test cannot provoke: add it here", code)
			continue
		}
		got := p()
		if len(got.codes) != 1 || got.codes[0] != code {
			t.Errorf("%s: the request answered %v", code, got.codes)
		}
		if wantStatus != 0 && got.status != wantStatus {
			t.Errorf("%s: HTTP %d, docs say %d", code, got.status, wantStatus)
		}
	}
	for code := range provoke {
		if _, ok := documented[code]; !ok {
			t.Errorf("the API answers %s, which docs/GRAPHQL.md's table does not list", code)
		}
	}
	for code := range elsewhere {
		if _, ok := documented[code]; !ok {
			t.Errorf("%s is not in docs/GRAPHQL.md's table", code)
		}
	}
}

// testExists reports whether a test function of that name is in the module.
func testExists(t *testing.T, name string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			found = strings.Contains(string(b), "func "+name+"(")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
