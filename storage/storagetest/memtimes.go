package storagetest

import (
	"context"
	"errors"
	"maps"
	"path"
	"strings"
	"sync"

	"github.com/skiffhq/skiff/storage"
)

// MemTimes is a storage.Times in memory, for the tests of backends that
// keep times in one (skiff serve keeps them in PostgreSQL:
// tenant/filetimes). With Broken set, every call fails with ErrBroken.
type MemTimes struct {
	mu     sync.Mutex
	times  map[storage.TreeRef]map[string]storage.Time
	Broken bool
	// ReadOnly makes Set and Delete fail with ErrBroken.
	ReadOnly bool
	writes   int
}

// ErrBroken is what a broken MemTimes fails with.
var ErrBroken = errors.New("the times cannot be reached")

// NewMemTimes returns an empty MemTimes.
func NewMemTimes() *MemTimes { return &MemTimes{times: map[storage.TreeRef]map[string]storage.Time{}} }

func (m *MemTimes) tree(ref storage.TreeRef) (map[string]storage.Time, error) {
	if m.Broken {
		return nil, ErrBroken
	}
	if m.times[ref] == nil {
		m.times[ref] = map[string]storage.Time{}
	}
	return m.times[ref], nil
}

// pick returns the times of ref's paths that key names (ok), under the
// name key gives.
func (m *MemTimes) pick(ref storage.TreeRef, key func(p string) (string, bool)) (map[string]storage.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.tree(ref)
	if err != nil {
		return nil, err
	}
	out := map[string]storage.Time{}
	for p, tm := range t {
		if k, ok := key(p); ok {
			out[k] = tm
		}
	}
	return out, nil
}

// List implements storage.Times.
func (m *MemTimes) List(_ context.Context, ref storage.TreeRef, dir string) (map[string]storage.Time, error) {
	return m.pick(ref, func(p string) (string, bool) { return path.Base(p), path.Dir(p) == dir })
}

// Get implements storage.Times.
func (m *MemTimes) Get(_ context.Context, ref storage.TreeRef, name string) (storage.Time, bool, error) {
	got, err := m.pick(ref, func(p string) (string, bool) { return p, p == name })
	tm, ok := got[name]
	return tm, ok, err
}

func under(p, name string) bool {
	return name == "." || p == name || strings.HasPrefix(p, name+"/")
}

// Under implements storage.Times.
func (m *MemTimes) Under(_ context.Context, ref storage.TreeRef, name string) (map[string]storage.Time, error) {
	return m.pick(ref, func(p string) (string, bool) { return p, under(p, name) })
}

// write runs change on ref's times, unless the times are read-only.
func (m *MemTimes) write(ref storage.TreeRef, change func(t map[string]storage.Time)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ReadOnly {
		return ErrBroken
	}
	t, err := m.tree(ref)
	if err != nil {
		return err
	}
	m.writes++
	change(t)
	return nil
}

// Set implements storage.Times.
func (m *MemTimes) Set(_ context.Context, ref storage.TreeRef, times map[string]storage.Time) error {
	return m.write(ref, func(t map[string]storage.Time) { maps.Copy(t, times) })
}

// Delete implements storage.Times.
func (m *MemTimes) Delete(_ context.Context, ref storage.TreeRef, name string) error {
	return m.write(ref, func(t map[string]storage.Time) {
		maps.DeleteFunc(t, func(p string, _ storage.Time) bool { return under(p, name) })
	})
}

// Count is how many times are kept.
func (m *MemTimes) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, t := range m.times {
		n += len(t)
	}
	return n
}

// Writes is how many Set and Delete calls went through.
func (m *MemTimes) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}
