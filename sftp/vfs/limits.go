package vfs

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Caps bound how many of one resource (open handles, channels, sessions)
// are held at once on one connection, by one user, by one account and by
// the whole process. A cap of zero or less is no cap at that level; the
// command line refuses such values, so only programs that embed the server
// leave levels open.
type Caps struct {
	PerConnection, PerUser, PerAccount, PerProcess int
}

// Levels a cap applies at, as LimitError names them.
const (
	LevelConnection = "connection"
	LevelUser       = "user"
	LevelAccount    = "account"
	LevelProcess    = "server"
)

// LimitError is the refusal of a resource over one of its caps. Its message
// is what the client is told: "too many open files for this user (limit
// 100)".
type LimitError struct {
	What  string // "open files", "SFTP channels", "SFTP sessions"
	Level string // LevelConnection, LevelUser, LevelAccount or LevelProcess
	Limit int
}

func (e *LimitError) Error() string {
	where := "for this " + e.Level
	switch e.Level {
	case LevelConnection:
		where = "on this connection"
	case LevelProcess:
		where = "on this server"
	}
	return fmt.Sprintf("too many %s %s (limit %d)", e.What, where, e.Limit)
}

// Counter counts one resource across every connection of the process and
// refuses what would go over its Caps. The zero of a level (an absent
// Counter, nil) counts nothing.
type Counter struct {
	what string
	caps Caps

	mu       sync.Mutex
	total    int
	users    map[[2]string]int
	accounts map[string]int
}

// NewCounter counts the resource named what ("open files") under caps.
func NewCounter(what string, caps Caps) *Counter {
	return &Counter{what: what, caps: caps, users: map[[2]string]int{}, accounts: map[string]int{}}
}

// Caps returns the counter's caps.
func (c *Counter) Caps() Caps { return c.caps }

// Total is how many are held in the whole process.
func (c *Counter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Holder is one connection's share of a Counter. A nil Holder counts
// nothing and refuses nothing.
type Holder struct {
	c       *Counter
	account string
	user    [2]string
	n       int // guarded by c.mu
}

// For returns the holder of one connection of the user; nil for a nil
// Counter.
func (c *Counter) For(accountID, userID string) *Holder {
	if c == nil {
		return nil
	}
	return &Holder{c: c, account: accountID, user: [2]string{accountID, userID}}
}

// Acquire takes one, or returns a *LimitError naming the first level (the
// narrowest) that is full.
func (h *Holder) Acquire() error {
	if h == nil {
		return nil
	}
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.full(h.n, h.user); err != nil {
		return err
	}
	h.n++
	c.users[h.user]++
	c.accounts[h.account]++
	c.total++
	return nil
}

// Check returns the *LimitError a new connection of the user would get
// for its first one, without taking it: for a refusal given before the
// connection is set up (its login), which Acquire then confirms.
func (c *Counter) Check(accountID, userID string) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.full(0, [2]string{accountID, userID})
}

// full returns the *LimitError of the narrowest full level for a holder
// of the user that holds n. c.mu is held.
func (c *Counter) full(n int, user [2]string) error {
	for _, l := range [...]struct {
		level string
		held  int
		limit int
	}{
		{LevelConnection, n, c.caps.PerConnection},
		{LevelUser, c.users[user], c.caps.PerUser},
		{LevelAccount, c.accounts[user[0]], c.caps.PerAccount},
		{LevelProcess, c.total, c.caps.PerProcess},
	} {
		if l.limit > 0 && l.held >= l.limit {
			return &LimitError{What: c.what, Level: l.level, Limit: l.limit}
		}
	}
	return nil
}

// Release gives back one taken by Acquire.
func (h *Holder) Release() {
	if h == nil {
		return
	}
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.n == 0 {
		return // more releases than acquires: a bug, but never go negative
	}
	h.n--
	c.total--
	if c.users[h.user]--; c.users[h.user] == 0 {
		delete(c.users, h.user)
	}
	if c.accounts[h.account]--; c.accounts[h.account] == 0 {
		delete(c.accounts, h.account)
	}
}

// Cap is the most the holder could ever hold: the smallest of the caps
// (0: none caps it). Other connections of the user or the account may
// leave it less.
func (h *Holder) Cap() int {
	if h == nil {
		return 0
	}
	n := 0
	for _, c := range [...]int{h.c.caps.PerConnection, h.c.caps.PerUser, h.c.caps.PerAccount, h.c.caps.PerProcess} {
		if c > 0 && (n == 0 || c < n) {
			n = c
		}
	}
	return n
}

// Held is how many the holder has.
func (h *Holder) Held() int {
	if h == nil {
		return 0
	}
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.n
}

// ReplyBudget bounds the memory of SFTP replies queued for clients across
// the process, and what one connection may queue of it. A channel whose
// reply cannot be queued within the budget stops reading its requests until
// its earlier replies are sent: that is the back-pressure. So that every
// channel always progresses, a channel with nothing queued may queue one
// reply (at most 256 KiB) even when the budget is spent; the memory held is
// therefore at most Total plus one reply per channel.
type ReplyBudget struct {
	total, perConn int64
	used           atomic.Int64
}

// NewReplyBudget makes a budget of total bytes of which one connection may
// queue perConnection. Values of zero or less mean no bound at that level.
func NewReplyBudget(total, perConnection int64) *ReplyBudget {
	return &ReplyBudget{total: total, perConn: perConnection}
}

// Used is how many bytes of replies are queued or being written now.
func (b *ReplyBudget) Used() int64 { return b.used.Load() }

// Total is the process-wide budget; 0 or less for none.
func (b *ReplyBudget) Total() int64 { return b.total }

// ReplyShare is one connection's account with the ReplyBudget. A nil
// ReplyShare bounds nothing.
type ReplyShare struct {
	b    *ReplyBudget
	used atomic.Int64
}

// For returns a new connection's share; nil for a nil budget.
func (b *ReplyBudget) For() *ReplyShare {
	if b == nil {
		return nil
	}
	return &ReplyShare{b: b}
}

// room reports whether n more bytes fit the connection's share and the
// process budget.
func (s *ReplyShare) room(n int64) bool {
	if s == nil {
		return true
	}
	if p := s.b.perConn; p > 0 && s.used.Load()+n > p {
		return false
	}
	if t := s.b.total; t > 0 && s.b.used.Load()+n > t {
		return false
	}
	return true
}

func (s *ReplyShare) add(n int64) {
	if s == nil {
		return
	}
	s.used.Add(n)
	s.b.used.Add(n)
}

// Used is how many bytes the connection has queued or being written.
func (s *ReplyShare) Used() int64 {
	if s == nil {
		return 0
	}
	return s.used.Load()
}
