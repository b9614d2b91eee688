package tenant

import (
	"context"
	"fmt"
	"sync"
)

// Share is a number of database connections that a group of callers (one
// request, one account's requests, all the API's requests) may hold at
// once. The pool (--database-max-connections) is one for the whole process:
// without shares, one GraphQL request whose hundred aliases each read in a
// transaction of their own takes every connection, and other tenants' SFTP
// logins, the policy's loads and the workers wait behind it.
//
// A transaction begun with shares in its context (WithShares) holds a slot
// of each while it runs; a call that finds a share full waits for a slot, or
// for its context to end. Store code never begins a transaction inside
// another's callback on a request's path, so a holder never waits for a
// slot its own caller holds, and the waits end.
type Share struct{ slots chan struct{} }

// NewShare returns a share of n connections (at least one).
func NewShare(n int) *Share { return &Share{slots: make(chan struct{}, max(n, 1))} }

// InUse is how many of its slots are held.
func (s *Share) InUse() int { return len(s.slots) }

type sharesKey struct{}

// WithShares returns a context whose transactions hold a slot of each of
// shares as well as of those ctx already carries. Give the narrower shares
// first (request, then account, then the API's): every caller takes them in
// the same order, so no two wait on each other crosswise.
func WithShares(ctx context.Context, shares ...*Share) context.Context {
	if len(shares) == 0 {
		return ctx
	}
	all := append(append([]*Share(nil), sharesFrom(ctx)...), shares...)
	return context.WithValue(ctx, sharesKey{}, all)
}

func sharesFrom(ctx context.Context) []*Share {
	s, _ := ctx.Value(sharesKey{}).([]*Share)
	return s
}

// hold takes a slot of each share ctx carries, in order, and returns the
// function that gives them back. While it waits, a free shared transaction
// (lock, nil when there is none) is as good: hold then takes the lock instead,
// gives back what it took, and reports locked. It fails only when ctx ends.
func hold(ctx context.Context, lock chan struct{}) (release func(), locked bool, err error) {
	shares := sharesFrom(ctx)
	taken := 0
	giveBack := func() {
		for _, s := range shares[:taken] {
			<-s.slots
		}
	}
	for _, s := range shares {
		select {
		case s.slots <- struct{}{}:
			taken++
		case lock <- struct{}{}:
			giveBack()
			return nil, true, nil
		case <-ctx.Done():
			giveBack()
			return nil, false, DBError(fmt.Errorf("wait for a database connection: %w", ctx.Err()))
		}
	}
	var once sync.Once
	return func() { once.Do(giveBack) }, false, nil
}
