package s3

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/storage"
)

// memBudget bounds the memory of transfers on one node: the parts of
// uploads and the chunks downloads fetch ahead. Each upload holds up to
// Config.PartsInFlight parts and each download up to 24 MiB of chunks, so
// without a bound a user who opens many files at once (1,024 handles on one
// connection by default) could make the node hold gigabytes and take it
// down for every account. With one:
//
//   - The node's transfers hold at most Config.Memory, and one account's at
//     most Config.MemoryPerAccount, so one account cannot take it all.
//   - A download over the budget reads on without read-ahead: each read
//     fetches the bytes it asks for (a ranged GET of that size), slower but
//     never refused. Its reply's memory is the SFTP reply budget's.
//   - An upload over the budget waits for memory: for a part of its own to
//     be sent, or, when it has none being sent, for up to Config.MemoryWait for
//     other transfers to give some back; then the write fails with
//     storage.ErrBusy, and nothing of the file is kept (as with any failed write).
//     A wait whose session is gone (Tree.WithGone) ends at once.
type memBudget struct {
	total, perAccount int64
	wait              time.Duration // Config.MemoryWait (0: none)

	mu       sync.Mutex
	used     int64
	accounts map[string]int64
	wake     chan struct{} // closed and replaced when memory is given back

	refused atomic.Int64 // uploads' writes failed with storage.ErrBusy
	narrow  atomic.Int64 // reads fetched alone, over the budget
}

func newMemBudget(total, perAccount int64, wait time.Duration) *memBudget {
	return &memBudget{total: total, perAccount: perAccount, wait: max(wait, 0), accounts: map[string]int64{}, wake: make(chan struct{})}
}

// tryTake takes n bytes for account if both the node and the account have
// room, and reports whether it did.
func (b *memBudget) tryTake(account string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.total || b.accounts[account]+n > b.perAccount {
		return false
	}
	b.used += n
	b.accounts[account] += n
	return true
}

// errGone ends a wait for memory whose answer nobody is left to hear: a
// cancellation, which the SFTP layer does not log as a failure.
var errGone = fmt.Errorf("the connection ended while the upload waited for memory: %w", context.Canceled)

// take takes n bytes for account, waiting up to Config.MemoryWait for them,
// or until gone is closed (errGone).
func (b *memBudget) take(account string, n int64, gone <-chan struct{}) error {
	if b.tryTake(account, n) {
		return nil
	}
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		wake := b.wake
		b.mu.Unlock()
		if b.tryTake(account, n) {
			return nil
		}
		select {
		case <-wake:
		case <-gone:
			return errGone
		case <-timer.C:
			b.refused.Add(1)
			return storage.ErrBusy
		}
	}
}

// give gives back n bytes account took.
func (b *memBudget) give(account string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.accounts[account] -= n; b.accounts[account] <= 0 {
		delete(b.accounts, account)
	}
	close(b.wake)
	b.wake = make(chan struct{})
}

// inUse reports the bytes held on the node and by account (tests,
// metrics).
func (b *memBudget) inUse(account string) (node, acct int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.accounts[account]
}

// MemoryUse is what a Store's transfers hold of its memory budget, and how
// often the budget was short (Config.Memory).
type MemoryUse struct {
	InUse, Limit int64
	// UploadsRefused counts writes that found no memory for their upload
	// within the wait and failed with storage.ErrBusy.
	UploadsRefused int64
	// ReadsOverBudget counts reads that fetched only their own bytes, with
	// no read-ahead, for want of memory.
	ReadsOverBudget int64
}

// MemoryUse reports the store's use of its memory budget (for metrics).
func (s *Store) MemoryUse() MemoryUse {
	node, _ := s.mem.inUse("")
	return MemoryUse{InUse: node, Limit: s.mem.total, UploadsRefused: s.mem.refused.Load(), ReadsOverBudget: s.mem.narrow.Load()}
}
