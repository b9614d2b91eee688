package graph_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/policy"
)

// BenchmarkPages is an owner's page of users and page of project folders at
// 20 and 200 rows, in the same run, through the real handler: the users
// with their group, storage and the first five folders shared with each
// (with the preset and rights), the folders with the owner's rights, their
// creator and their members. With every per-row field batched, the 200-row
// pages should take less than twice the 20-row ones (#18's goal); compare
// wall-ms/op (the median request, from sending it to the response's last
// byte, as a client waits for it) and cpu-ms/op (this process's CPU per
// request: server, client and GC) of size=20 and size=200 of the same run,
// as the machine's load moves both. ns/op also counts the client's decoding
// and checking of the response.
func BenchmarkPages(b *testing.B) {
	// 200 users with five folders each are over the default complexity
	// limit (10,000); this measures loading, not the limit.
	e := newEnvWith(b, func(c *graph.Config) { c.MaxComplexity = 100_000 })
	// As in production, where notifications keep an account's policy for
	// policy.DefaultListeningMaxAge: without them it is read again every
	// second, a cost of its own that has nothing to do with the page.
	enforcer, err := policy.New(e.svc.DB, policy.Options{MaxAge: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	e.svc.Sharing.Policy = enforcer
	s := seedSharing(e, 200, 200)
	pages := []struct{ name, query string }{
		{"users", `query($n: Int!) { account { users(first: $n) { edges { node {
			id name email role group { name } sftp { enabled } storage { used quota }
			projectsSharedWithMe(first: 5) { edges { preset rights node { id name } } pageInfo { hasNextPage } } } }
			pageInfo { endCursor hasNextPage } } } }`},
		{"folders", `query($n: Int!) { account { projectFolders(first: $n) { edges { node {
			id name createdAt myRights createdBy { id name }
			members { preset sharedAt user { id name } group { id name } } } }
			pageInfo { endCursor hasNextPage } } } }`},
	}
	runtime.GC() // the seed's garbage is not the pages' to collect
	// Rounds interleave the sizes, so that the machine's load moves both
	// alike; benchstat takes the median of each (strip the #NN that go test
	// appends to repeated names):
	//
	//	go test -run '^$' -bench BenchmarkPages -benchtime 10x ./graph/ | sed 's/#[0-9]*//' | benchstat -
	for range pageRounds {
		for _, p := range pages {
			for _, n := range []int{20, 200} {
				b.Run(fmt.Sprintf("%s/size=%d", p.name, n), func(b *testing.B) {
					v := vars{"n": n}
					e.mustDo(s.owner, p.query, v, nil) // warm: the policy, the plans
					b.ReportAllocs()
					var walls []time.Duration
					cpu0 := processCPU(b)
					for b.Loop() {
						walls = append(walls, e.timedDo(s.owner, p.query, v))
					}
					b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
					slices.Sort(walls)
					b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "wall-ms/op")
				})
			}
		}
	}
}

// timedDo is mustDo that returns how long the client waited for the whole
// response (sent to last byte, decompressed as it arrives); it decodes and
// checks the response afterwards.
func (e *env) timedDo(token, query string, v vars) time.Duration {
	e.t.Helper()
	req := e.newPost(token, map[string]any{"query": query, "variables": v})
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	if err != nil {
		e.t.Fatal(err)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil || len(r.Errors) > 0 || res.StatusCode != http.StatusOK {
		e.t.Fatalf("status %d, errors %+v (%v)\nquery: %s", res.StatusCode, r.Errors, err, query)
	}
	return took
}

// pageRounds is how many times BenchmarkPages measures each page.
const pageRounds = 5
