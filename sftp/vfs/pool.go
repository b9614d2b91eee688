package vfs

import (
	"context"
	"sync"
	"time"
)

// A session's writes draw on a pool of room reserved in the Quota, one pool
// per tree the session writes to, so that only the session's first write
// (and one write in each later burst) waits for the Quota:
//
//   - The first write that needs room reserves a chunk (poolChunk, or what
//     the session wrote in the last poolAhead at its recent rate, up to
//     poolMax). A handle takes room from the pool drawChunk at a time and
//     checks each write against what it holds, in memory.
//   - When the pool falls under half its last chunk, the next chunk is
//     reserved in the background while the writes go on (poolAhead).
//   - A handle's close gives back what its file did not use and settles the
//     file's growth in the background: settlements of one pool are batched,
//     one call to the Quota at a time, so the client's close never waits.
//   - Room no write has drawn on for QuotaPoolIdle (DefaultQuotaPoolIdle) is
//     returned to the Quota, and all of it when the session ends. A pool
//     that holds room renews its reservation at least every poolRenew,
//     well within the reservation's expiry (an hour in tenant/storageuse),
//     which returns the room of a node that died.
//   - Near the quota (the Quota grants only what a write needs, or no more
//     chunk), the pool is tight: each write reserves exactly what it needs
//     and a close returns everything, so that a session holds no room
//     another needs.
//
// The Quota counts pooled room as reserved: the session's room (pooled,
// held by handles, not yet settled) plus what is stored never exceeds a
// quota. The pool's timing is the real clock (not Config.Now): it is about
// the database's reservations and the session's idleness.

const (
	poolChunk = 64 << 20         // the smallest chunk a pool reserves
	poolMax   = 1 << 30          // the largest
	poolAhead = 2 * time.Second  // a chunk lasts this long at the session's recent rate
	drawChunk = 4 << 20          // what a handle takes from its pool at once
	poolRenew = 10 * time.Minute // a pool holding room renews its reservation this often
)

// DefaultQuotaPoolIdle is how long a session keeps reserved room that no
// write draws on when Config.QuotaPoolIdle is zero.
const DefaultQuotaPoolIdle = time.Second

// pool is a session's reserved room in one tree.
type pool struct {
	s    *Session
	tree string

	mu      sync.Mutex
	free    int64         // reserved in the Quota, held by no handle
	lent    int64         // reserved in the Quota, held by open handles
	tight   bool          // near the quota: reserve exactly what writes need, keep nothing
	asking  chan struct{} // closed when the call to Reserve under way ends; nil: none
	chunk   int64         // the last chunk reserved
	drawn   int64         // taken by handles since rateSince
	since   time.Time     // the last chunk's reservation
	renewed time.Time     // the Quota's last answer to a Reserve
	used    time.Time     // the last take or give-back
	timer   *time.Timer   // ticks every QuotaPoolIdle while the pool holds room
	armed   bool
	closed  bool // the session ends: Session.Close returns what the pool holds

	pendReserved, pendDelta int64 // settlements not yet sent to the Quota
	flushing                bool  // flush is running
}

// pool returns the session's pool for tree, making it on first use.
func (s *Session) pool(tree string) *pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pools[tree]
	if p == nil {
		p = &pool{s: s, tree: tree}
		s.pools[tree] = p
	}
	return p
}

// reserve asks the Quota for room, bounded by quotaTimeout.
func (p *pool) reserve(need, want int64) (int64, error) {
	ctx, cancel := context.WithTimeout(p.s.ctx, quotaTimeout)
	defer cancel()
	return p.s.cfg.Quota.Reserve(ctx, p.tree, need, want)
}

// nextChunk is the size of the next chunk: what the session took in the
// last poolAhead at the rate it took room since the last chunk, within
// [poolChunk, poolMax]. Called with p.mu held.
func (p *pool) nextChunk(now time.Time) int64 {
	elapsed := now.Sub(p.since)
	if p.since.IsZero() || elapsed <= 0 || p.drawn == 0 {
		return poolChunk
	}
	ahead := float64(p.drawn) * poolAhead.Seconds() / elapsed.Seconds()
	if ahead >= poolMax {
		return poolMax
	}
	return max(int64(ahead), poolChunk)
}

// granted records a chunk of n bytes the Quota granted at now. Called with
// p.mu held.
func (p *pool) granted(n int64, now time.Time) {
	p.free += n
	p.chunk = n
	p.drawn = 0
	p.since = now
}

// take gives a handle room for need more bytes: need, or up to drawChunk
// when the pool is not tight, from the pool, reserving more when the pool
// has less than need. credit is how much of got the Quota could not be
// asked for (it did not answer: the write goes through, and usage is put
// right when the file is settled or by the reconcile pass);
// errQuotaExceeded when a quota has no room for need.
func (p *pool) take(need int64) (got, credit int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.free < need {
		if ch := p.asking; ch != nil {
			p.mu.Unlock()
			<-ch
			p.mu.Lock()
			continue
		}
		missing := need - p.free
		want := max(missing, p.nextChunk(time.Now()))
		ch := make(chan struct{})
		p.asking = ch
		p.mu.Unlock()
		n, err := p.reserve(missing, want)
		p.mu.Lock()
		p.asking = nil
		close(ch)
		now := time.Now()
		switch {
		case err != nil:
			p.s.log.Warn("sftp: quota unavailable, write allowed", "err", err)
			return want, want, nil
		case n < missing:
			p.renewed = now
			p.tight = true
			p.free += n // a Quota that granted less than asked: the next give-back or tick returns it
			p.arm()
			return 0, 0, errQuotaExceeded
		}
		p.renewed = now
		p.tight = n < want
		p.granted(n, now)
	}
	got = need
	if !p.tight {
		got = min(p.free, max(need, drawChunk))
	}
	now := time.Now()
	p.free -= got
	p.lent += got
	p.drawn += got
	p.used = now
	if !p.tight && p.asking == nil && !p.closed && p.free < p.chunk/2 {
		p.askLater(p.nextChunk(now))
	}
	p.arm()
	return got, 0, nil
}

// askLater reserves want more bytes in the background, or only renews the
// pool's reservation when want is 0. A refusal makes the pool tight.
// Called with p.mu held.
func (p *pool) askLater(want int64) {
	ch := make(chan struct{})
	p.asking = ch
	p.s.settling.Go(func() {
		n, err := p.reserve(0, want)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.asking = nil
		close(ch)
		if err != nil {
			p.s.log.Warn("sftp: quota unavailable, room not reserved ahead", "err", err)
			return
		}
		now := time.Now()
		p.renewed = now
		switch {
		case n > 0:
			p.granted(n, now)
		case want > 0:
			p.tight = true
		}
	})
}

// giveBack ends a handle's hold on held bytes taken from the pool (credit
// of them never reserved) and settles delta bytes (negative: freed) as now
// stored: the bytes of the reservation that the growth used are recorded
// as usage, the rest goes back to the pool, or to the Quota when the pool
// is tight. The Quota hears of it in the background (flush).
func (p *pool) giveBack(held, credit, delta int64) {
	backed := held - credit
	used := min(max(delta, 0), backed)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lent -= backed
	p.free += backed - used
	returned := used
	if p.tight || p.closed {
		returned += p.free
		p.free = 0
	}
	if held != 0 || delta != 0 {
		p.used = time.Now()
	}
	p.settleLater(returned, delta)
	if p.free > 0 {
		p.arm()
	}
}

// settleLater adds a settlement to the batch that flush sends. Called with
// p.mu held.
func (p *pool) settleLater(reserved, delta int64) {
	if reserved == 0 && delta == 0 {
		return
	}
	p.pendReserved += reserved
	p.pendDelta += delta
	if !p.flushing {
		p.flushing = true
		p.s.settling.Go(p.flush)
	}
}

// flush sends the pool's settlements to the Quota, one call at a time,
// each with everything that gathered while the last was under way.
func (p *pool) flush() {
	for {
		p.mu.Lock()
		reserved, delta := p.pendReserved, p.pendDelta
		p.pendReserved, p.pendDelta = 0, 0
		if reserved == 0 && delta == 0 {
			p.flushing = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		p.s.settle(p.tree, reserved, delta)
	}
}

// arm starts the pool's ticks. Called with p.mu held.
func (p *pool) arm() {
	if p.armed || p.closed {
		return
	}
	p.armed = true
	if p.timer == nil {
		p.timer = time.AfterFunc(p.s.poolIdle, p.tick)
	} else {
		p.timer.Reset(p.s.poolIdle)
	}
}

// tick returns the room of a pool that no write drew on for QuotaPoolIdle
// and renews the reservation of one that holds room; it ticks again while
// the pool holds room.
func (p *pool) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.armed = false
		return
	}
	now := time.Now()
	if p.free > 0 && now.Sub(p.used) >= p.s.poolIdle {
		p.settleLater(p.free, 0)
		p.free = 0
	}
	if p.free+p.lent <= 0 {
		p.armed = false
		return
	}
	if p.asking == nil && now.Sub(p.renewed) >= poolRenew {
		p.askLater(0)
	}
	p.timer.Reset(p.s.poolIdle)
}

// closePools stops the pools' background work: no chunk is reserved ahead
// or returned on a tick after it. Session.Close calls it once every Serve
// has returned, then waits for the calls under way and returns the room
// left (returnPools).
func (s *Session) closePools() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pools {
		p.mu.Lock()
		p.closed = true
		if p.timer != nil {
			p.timer.Stop()
		}
		p.mu.Unlock()
	}
}

// returnPools returns what the pools still hold to the Quota, and waits.
func (s *Session) returnPools() {
	s.mu.Lock()
	pools := make([]*pool, 0, len(s.pools))
	for _, p := range s.pools {
		pools = append(pools, p)
	}
	s.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		reserved, delta := p.free+p.pendReserved, p.pendDelta
		p.free, p.pendReserved, p.pendDelta = 0, 0, 0
		p.mu.Unlock()
		s.settle(p.tree, reserved, delta)
	}
}
