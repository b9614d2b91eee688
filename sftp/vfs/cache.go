package vfs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/internal/runecut"
)

// gateCache asks the Gate at most once per ttl while it says yes, and
// remembers a no for good. An answer wrapping ErrGateUnavailable is no
// answer: the session keeps the rights it was last confirmed to have, for up
// to grace after that confirmation (the login counts as one), asking again
// every ttl in the background meanwhile so that operations do not wait on a
// database that does not answer; past grace it ends the session. The fresh
// path is two atomic loads and a clock read, cheap enough for every read and
// write packet.
type gateCache struct {
	gate  Gate
	ttl   time.Duration
	grace time.Duration
	now   func() time.Time
	// bg is the context of background checks: it ends with the session.
	bg context.Context
	// refusedLater is told of a refusal a background check found, to end
	// the session without waiting for its next operation.
	refusedLater func(error)

	okUntil   atomic.Pointer[time.Time]
	mu        sync.Mutex // one Gate call at a time
	refused   atomic.Pointer[error]
	confirmed atomic.Pointer[time.Time] // the last yes (or the session's start)
	outage    atomic.Bool               // the last answer was ErrGateUnavailable
	checking  atomic.Bool               // a background check is running
}

func (g *gateCache) check(ctx context.Context) error {
	if err := g.refused.Load(); err != nil {
		return *err
	}
	now := g.now()
	if until := g.okUntil.Load(); until != nil && now.Before(*until) {
		return nil
	}
	if g.outage.Load() && g.withinGrace(now) {
		// The database did not answer last time: do not make this
		// operation wait for it again.
		g.checkLater()
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refused.Load(); err != nil {
		return *err
	}
	now = g.now()
	if until := g.okUntil.Load(); until != nil && now.Before(*until) {
		return nil // refreshed while we waited
	}
	return g.ask(ctx, now)
}

// recheck asks the Gate now, whatever the cached answer.
func (g *gateCache) recheck(ctx context.Context) error {
	if err := g.refused.Load(); err != nil {
		return *err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ask(ctx, g.now())
}

// checkLater asks the Gate in the background unless a check is running.
func (g *gateCache) checkLater() {
	if !g.checking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer g.checking.Store(false)
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.refused.Load() != nil {
			return
		}
		if err := g.ask(g.bg, g.now()); err != nil && g.refusedLater != nil {
			g.refusedLater(err)
		}
	}()
}

// ask calls the Gate and records its answer; g.mu is held.
func (g *gateCache) ask(ctx context.Context, now time.Time) error {
	err := g.gate.Check(ctx)
	switch {
	case err == nil:
		g.confirmed.Store(&now)
		g.outage.Store(false)
	case errors.Is(err, ErrGateUnavailable) && g.withinGrace(now):
		// Keep the last known rights; ask again after ttl.
		g.outage.Store(true)
	case errors.Is(err, ErrGateUnavailable):
		err = fmt.Errorf("access could not be checked for %v: %w", g.grace, err)
		g.refused.Store(&err)
		return err
	default:
		g.refused.Store(&err)
		return err
	}
	until := now.Add(g.ttl)
	g.okUntil.Store(&until)
	return nil
}

// withinGrace reports whether now is within grace of the last yes.
func (g *gateCache) withinGrace(now time.Time) bool {
	c := g.confirmed.Load()
	return c != nil && now.Sub(*c) < g.grace
}

// sharesCache keeps the resolved shared folders for ttl, or until changed
// moves on: a copy fetched before the user's rights changed is not used
// again, whatever its age. Errors are not cached: the next operation asks
// again. When the Shares cannot answer, the last folders fetched serve for
// up to grace after they were fetched, like the Gate's last answer.
type sharesCache struct {
	shares  Shares
	changed *Generation // nil: only ttl ends a copy
	ttl     time.Duration
	grace   time.Duration
	now     func() time.Time

	mu      sync.Mutex
	fetched time.Time
	gen     uint64 // changed's count when the copy's fetch began
	valid   bool
	folders []SharedFolder // sorted by display name, names unique

	// own are the folders mounted in My Files, under their names there,
	// sorted. They are worked out on first use after each fetch, since they
	// depend on the home's entries too, and kept when a fetch fails, so
	// that names that were mounts are not taken for the home's meanwhile.
	own      []SharedFolder
	ownValid bool
}

// list returns the shared folders under their display names, sorted.
func (c *sharesCache) list(ctx context.Context) ([]SharedFolder, error) {
	if c.shares == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh(ctx)
}

// refresh asks for the folders again when the copy is older than ttl or
// the rights changed since it was fetched. c.mu is held.
func (c *sharesCache) refresh(ctx context.Context) ([]SharedFolder, error) {
	now := c.now()
	// Read before the fetch: a change that comes while the fetch runs
	// leaves the copy it brings already stale, so the next operation asks
	// again and the change is never missed.
	gen := c.changed.Count()
	if c.valid && gen == c.gen && now.Before(c.fetched.Add(c.ttl)) {
		return c.folders, nil
	}
	got, err := c.shares.SharedFolders(ctx)
	if err != nil {
		if c.valid && now.Before(c.fetched.Add(c.grace)) {
			return c.folders, nil
		}
		return nil, fmt.Errorf("list shared folders: %w", err)
	}
	c.folders, c.fetched, c.gen, c.valid = displayNames(got), now, gen, true
	c.ownValid = false
	return c.folders, nil
}

// myFiles returns the folders mounted in My Files, named as there and
// sorted; inHome reports whether the home has an entry of a name. When the
// folders cannot be fetched it returns the error with the last ones it had.
func (c *sharesCache) myFiles(ctx context.Context, inHome func(name string) bool) ([]SharedFolder, error) {
	if c.shares == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	folders, err := c.refresh(ctx)
	if err != nil {
		return c.own, err
	}
	if !c.ownValid {
		var own []SharedFolder
		for _, f := range folders {
			if f.InMyFiles {
				own = append(own, f)
			}
		}
		c.own, c.ownValid = myFilesNames(own, inHome), true
	}
	return c.own, nil
}

// Generation counts the changes to what sessions hold a copy of, such as a
// user's rights in their shared folders (Config.SharesChanged): Bump makes
// every session that holds it read its copy again at its next operation.
// Sessions compare the count on every lookup, which is one atomic load. The
// zero value is ready to use; a nil *Generation never changes.
type Generation struct{ n atomic.Uint64 }

// Bump records a change.
func (g *Generation) Bump() { g.n.Add(1) }

// Count is the number of changes so far (0 for nil).
func (g *Generation) Count() uint64 {
	if g == nil {
		return 0
	}
	return g.n.Load()
}

// lookup finds a shared folder by display name.
func (c *sharesCache) lookup(ctx context.Context, name string) (SharedFolder, bool, error) {
	folders, err := c.list(ctx)
	if err != nil {
		return SharedFolder{}, false, err
	}
	f, ok := findFolder(folders, name)
	return f, ok, nil
}

// findFolder finds a folder by name in folders sorted by name.
func findFolder(folders []SharedFolder, name string) (SharedFolder, bool) {
	i := sort.Search(len(folders), func(i int) bool { return folders[i].Name >= name })
	if i < len(folders) && folders[i].Name == name {
		return folders[i], true
	}
	return SharedFolder{}, false
}

// displayNames gives every folder a unique name that CleanPath accepts,
// deterministically whatever order the provider returns them in: folders
// are taken by (name, ID); the first keeps its name, later ones with the
// same name become "Name (2)", "Name (3)"… skipping names already in use.
// A folder shared twice (directly and through a group) appears once, with
// the union of its rights, in My Files if either says so.
func displayNames(in []SharedFolder) []SharedFolder {
	byID := make(map[string]int, len(in))
	folders := make([]SharedFolder, 0, len(in))
	for _, f := range in {
		if i, ok := byID[f.ID]; ok {
			folders[i].Rights |= f.Rights
			folders[i].InMyFiles = folders[i].InMyFiles || f.InMyFiles
			continue
		}
		byID[f.ID] = len(folders)
		f.Name = safeName(f.Name)
		folders = append(folders, f)
	}
	sort.Slice(folders, func(i, j int) bool {
		if folders[i].Name != folders[j].Name {
			return folders[i].Name < folders[j].Name
		}
		return folders[i].ID < folders[j].ID
	})
	taken := make(map[string]bool, len(folders))
	for _, f := range folders {
		taken[f.Name] = true
	}
	prev := ""
	for i := range folders {
		base := folders[i].Name
		if i == 0 || base != prev {
			prev = base
			continue
		}
		folders[i].Name = numbered(base, func(name string) bool { return taken[name] })
		taken[folders[i].Name] = true
	}
	sort.Slice(folders, func(i, j int) bool { return folders[i].Name < folders[j].Name })
	return folders
}

// myFilesNames names the folders mounted in My Files. They come with their
// display names, unique among them; where the home has an entry of that
// name, the entry keeps it (a user's own file is never hidden) and the
// folder becomes "Name (2)", "Name (3)"…, the first free in both.
func myFilesNames(own []SharedFolder, inHome func(name string) bool) []SharedFolder {
	taken := make(map[string]bool, len(own))
	for _, f := range own {
		taken[f.Name] = true
	}
	for i := range own {
		if inHome(own[i].Name) {
			own[i].Name = numbered(own[i].Name, func(name string) bool { return taken[name] || inHome(name) })
			taken[own[i].Name] = true
		}
	}
	sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
	return own
}

// numbered returns the first of "base (2)", "base (3)"… that is not taken,
// with base cut so that the name fits MaxNameLen.
func numbered(base string, taken func(name string) bool) string {
	for n := 2; ; n++ {
		suffix := fmt.Sprintf(" (%d)", n)
		if name := truncateName(base, MaxNameLen-len(suffix)) + suffix; !taken(name) {
			return name
		}
	}
}

// safeName makes a project folder's name usable as one path element.
func safeName(name string) string {
	name = strings.ToValidUTF8(name, "_")
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	switch {
	case name == "" || name == "." || name == "..":
		name = "Folder"
	case strings.HasPrefix(name, tempPrefix):
		name = "_" + name
	}
	return truncateName(name, MaxNameLen)
}

// truncateName cuts name to at most max bytes on a rune boundary.
func truncateName(name string, max int) string { return runecut.Prefix(name, max) }
