package graph_test

import (
	"fmt"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// allocations counts the heap allocations the process has made.
func allocations() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// leastOf5 is the fewest of what count tells over five of the owner's
// requests of query: the HTTP client and server start goroutines and
// allocate for their own reasons now and then.
func leastOf5(e *env, token, query string, count func() uint64) uint64 {
	least := uint64(1 << 62)
	for range 5 {
		before := count()
		e.mustDo(token, query, nil, nil)
		least = min(least, count()-before)
	}
	return least
}

// goroutinesCreated counts the goroutines the process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Lists of rights are written in one pass: gqlgen's marshaller for a list of
// enum values starts a goroutine per value, which on a page of 200 users
// with their shared folders was some 2,800 goroutines, and 1,400 on a page
// of 200 folders. Asking for the rights must start no goroutine more than
// the same page without them. (On the folders page, the page without them
// asks for another field with a resolver, members, in their place: gqlgen
// starts a goroutine for the second resolver field of a row, and a page
// whose rows select only fields that cannot wait starts no goroutine per
// row at all, graph/generated's marshalList.)
//
// Not parallel: the count is the whole process's.
func TestRightsListsStartNoGoroutines(t *testing.T) {
	e := newEnv(t)
	s := seedSharing(e, 12, 12)
	pages := []struct{ name, with, without string }{
		{"users' shared folders",
			`{ account { users(first: 20) { edges { node { projectsSharedWithMe(first: 5) { edges { preset rights node { name } } } } } } } }`,
			`{ account { users(first: 20) { edges { node { projectsSharedWithMe(first: 5) { edges { preset node { name } } } } } } } }`},
		{"folders",
			`{ account { projectFolders(first: 20) { edges { node { name createdBy { name } myRights } } } } }`,
			`{ account { projectFolders(first: 20) { edges { node { name createdBy { name } members { preset } } } } } }`},
	}
	started := func(query string) uint64 { return leastOf5(e, s.owner, query, goroutinesCreated) }
	for _, p := range pages {
		with, without := started(p.with), started(p.without)
		// The owner has every right in every folder (eight), users at
		// least LIST: well over 50 values on either page.
		if with > without+2 {
			t.Errorf("%s: %d goroutines with the rights, %d without", p.name, with, without)
		}
	}
}

// An object of a response costs no work for @defer unless one of its fields
// is deferred: gqlgen starts a group for deferred fields in every object,
// computing the object's path from the root (a slice and a boxed name per
// level) and allocating a field set and a map, about ten allocations for an
// object five levels deep; graph/gqlgen_gen.go has the generated code start
// one only for a deferred field (graph/generated/fastpath.go). A row of a
// page of users' names (two objects: the edge and the user) cost 74 to 80
// allocations with the groups (77 under -race) and costs 55 to 59 without
// (63 under -race).
//
// Not parallel: the count is the whole process's.
func TestObjectsStartNoDeferredGroup(t *testing.T) {
	e := newEnv(t)
	s := seedSharing(e, 200, 0)
	// Without collections, which empty the pools (of buffers, gzip writers)
	// that the requests then fill again.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	page := func(n int) float64 {
		return float64(leastOf5(e, s.owner, fmt.Sprintf(`{ account { users(first: %d) { edges { node { name } } } } }`, n), allocations))
	}
	// The rows from 20 to 200, so that what a page costs whatever its
	// size counts on both sides.
	if perRow := (page(200) - page(20)) / 180; perRow > 68 {
		t.Errorf("a row costs %.1f allocations", perRow)
	}
}
