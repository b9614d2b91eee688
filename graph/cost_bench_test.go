package graph_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/graph"
)

// BenchmarkHostileRequests measures the server's CPU for the issue's
// anonymous attacks, called on the handler directly (no network, no
// client): the 460 KB duplicate-field request (20,000 × viewer, refused as
// QUERY_TOO_LARGE before validation) and 40 aliases of a users page with
// first: 200 nested in members(first: 200) (refused by the complexity
// limit before running). Goal (issue 13): ≤ 10 ms of CPU per request.
//
//	go test -run XXX -bench HostileRequests -benchtime 50x ./graph
func BenchmarkHostileRequests(b *testing.B) {
	e := newEnvWith(b, func(c *graph.Config) { c.MaxBodyBytes = 1 << 20 })
	h := e.srv.Config.Handler
	var alias strings.Builder
	alias.WriteString("{ ")
	for i := range 40 {
		alias.WriteString("a" + string(rune('A'+i%26)) + string(rune('a'+i/26)) +
			`: account { users(first: 200) { edges { node { id group { members(first: 200) { edges { node { id sshKeys { id } } } } } } } } } `)
	}
	alias.WriteString("}")
	for _, c := range []struct{ name, query, code string }{
		{"duplicate-fields-460KB", "{ " + strings.Repeat("viewer { __typename } ", 20000) + "}", "QUERY_TOO_LARGE"},
		{"first-multiplied-aliases", alias.String(), "COMPLEXITY_LIMIT_EXCEEDED"},
	} {
		body, _ := json.Marshal(map[string]any{"query": c.query})
		b.Run(c.name, func(b *testing.B) {
			send := func() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if !strings.Contains(rec.Body.String(), c.code) {
					b.Fatalf("want %s, got %d %.300s", c.code, rec.Code, rec.Body.String())
				}
			}
			send()
			b.SetBytes(int64(len(body)))
			cpu0 := processCPU(b)
			for b.Loop() {
				send()
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
