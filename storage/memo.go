package storage

import "sync"

// A Memo lets the trees of one session answer again what the store told
// them of a name during one client request, instead of asking the store
// again. One SFTP request often asks about the same name several times: the
// session checks before it acts (is it a folder, may it be replaced), and
// the tree checks again as it acts (an upload's open asks whether the name
// is a folder, whether its parent is one, and whether anything is there).
// On a local disk each is a system call; on an object store each is a round
// trip of milliseconds, and a small file's upload paid for the same answers
// two and three times.
//
// An answer is good only within the span it was learned in:
//   - a span is one request: Begin opens it and End ends it, and both
//     forget everything (with several channels in one session, the start
//     or end of any of their requests), so that no answer is older than
//     the request it serves;
//   - a tree calls Forget once it has changed the store, and an answer
//     asked before a change or an end and received after it is not kept
//     (Look's token says which it was);
//   - outside every span nothing is kept.
//
// So a request never sees a change of its own session's as not made, and
// sees another session's change no later than it would have without the
// memo, had its checks been made at the start of the request. A nil *Memo
// keeps nothing. Backends that answer from memory (the local disk) ignore it.
type Memo struct {
	mu    sync.Mutex
	spans int
	gen   uint64
	known map[string]any
}

// Remember returns tree answering from m where its backend can (it has a
// WithMemo method, as S3 trees do), tree itself otherwise.
func Remember(tree Tree, m *Memo) Tree {
	if r, ok := tree.(interface{ WithMemo(*Memo) Tree }); ok && m != nil {
		return r.WithMemo(m)
	}
	return tree
}

// Begin opens a span, and forgets everything: what another channel's
// request learned before this one began is older than this one.
func (m *Memo) Begin() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.spans++
	m.forgetLocked()
	m.mu.Unlock()
}

// End closes a span that Begin opened, and forgets everything.
func (m *Memo) End() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.spans--
	m.forgetLocked()
	m.mu.Unlock()
}

// Open reports whether a span is open: whether what a tree learns now
// would be kept.
func (m *Memo) Open() bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.spans > 0
}

// Look returns what is kept for key, and a token for Keep.
func (m *Memo) Look(key string) (v any, ok bool, token uint64) {
	if m == nil {
		return nil, false, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok = m.known[key]
	return v, ok, m.gen
}

// Keep keeps v for key if a span is open and nothing was changed and no
// span ended since Look gave token.
func (m *Memo) Keep(token uint64, key string, v any) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.spans == 0 || token != m.gen {
		return
	}
	if m.known == nil {
		m.known = map[string]any{}
	}
	m.known[key] = v
}

// Forget drops everything kept: the store was changed.
func (m *Memo) Forget() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.forgetLocked()
	m.mu.Unlock()
}

func (m *Memo) forgetLocked() {
	m.gen++
	clear(m.known)
}
