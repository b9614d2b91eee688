// Package testclock is a settable clock for tests of code that takes a
// `Now func() time.Time`: trial expiry, token lifetimes, retries and cache
// expiry are tested by moving the clock, never by sleeping.
package testclock

import (
	"sync"
	"time"
)

// Clock is safe for concurrent use. Pass its Now method where code wants a clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock standing at t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
