package s3

import (
	"time"

	"github.com/skiffhq/skiff/storage"
)

// PeakParts is the most parts u held in memory at once.
func PeakParts(u storage.Upload) int {
	w := u.(*Upload)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// MemoryInUse is what the store's transfers hold of its memory budget: on
// the node, and for account.
func MemoryInUse(s *Store, account string) (node, acct int64) { return s.mem.inUse(account) }

// SetMemoryWait sets how long an upload of s waits for memory; call it
// while no upload of s writes.
func SetMemoryWait(s *Store, d time.Duration) { s.mem.wait = d }
