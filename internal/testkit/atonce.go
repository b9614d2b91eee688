package testkit

import (
	"sync/atomic"
	"time"
)

// AtOnce counts the callers inside a section at the same time and keeps the
// most there ever were: tests of limits on concurrency (connections,
// transfers) hold the section for a while and then read Most.
type AtOnce struct{ now, most atomic.Int32 }

// Hold is inside the section for d.
func (a *AtOnce) Hold(d time.Duration) {
	n := a.now.Add(1)
	for m := a.most.Load(); n > m && !a.most.CompareAndSwap(m, n); m = a.most.Load() {
	}
	time.Sleep(d)
	a.now.Add(-1)
}

// Most is the most callers that were inside at once.
func (a *AtOnce) Most() int32 { return a.most.Load() }
