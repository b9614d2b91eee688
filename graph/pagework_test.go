package graph_test

import (
	"runtime/metrics"
	"testing"
)

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
// the same page without them.
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
			`{ account { projectFolders(first: 20) { edges { node { name myRights } } } } }`,
			`{ account { projectFolders(first: 20) { edges { node { name } } } } }`},
	}
	// The fewest of a few runs: the HTTP client and server start some of
	// their own now and then.
	started := func(query string) uint64 {
		least := uint64(1 << 62)
		for range 5 {
			before := goroutinesCreated()
			e.mustDo(s.owner, query, nil, nil)
			least = min(least, goroutinesCreated()-before)
		}
		return least
	}
	for _, p := range pages {
		with, without := started(p.with), started(p.without)
		// The owner has every right in every folder (eight), users at
		// least LIST: well over 50 values on either page.
		if with > without+2 {
			t.Errorf("%s: %d goroutines with the rights, %d without", p.name, with, without)
		}
	}
}
