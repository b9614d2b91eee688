// Package testkit holds the few helpers many packages' tests share: a
// settable clock, a log buffer safe for servers' goroutines, and polling for
// an outcome without asserting how fast it comes.
package testkit

import (
	"sync"
	"time"
)

// Clock is a settable clock for code that takes a `Now func() time.Time`:
// trial expiry, token lifetimes, retries and cache expiry are tested by
// moving the clock, never by sleeping. It is safe for concurrent use. Pass its Now method where code wants a clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

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
