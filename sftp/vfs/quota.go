package vfs

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/skiffhq/skiff/storage"
)

// Quota is what a session's writes are charged to (Config.Quota); the
// product's is a tenant/storageuse Meter, in PostgreSQL. Trees are named by
// ID: the session user's ID for My Files, a project folder's ID.
//
// Writes do not ask it each time: the session reserves room in chunks, one
// pool per tree, and handles check each write against what they took from
// it, in memory; a close settles the file's growth in the background (the
// client's close does not wait), and the session returns its pools' room
// when it ends or no longer writes (pool.go). A failure to ask (the
// database is down) lets the write through: usage is then put right at
// close or by the reconcile pass.
type Quota interface {
	// Reserve sets more bytes aside for the session's writes to tree: want
	// when the quotas have room for them, else need; it returns how many,
	// 0 when a quota has no room for need. need 0 asks for want or nothing
	// (room ahead of the writes: no room is not a refusal), and need and
	// want 0 set nothing aside. Every call renews what the session has
	// set aside for tree, which would otherwise expire.
	Reserve(ctx context.Context, tree string, need, want int64) (int64, error)
	// Settle returns reserved bytes and records delta bytes (negative:
	// freed) as stored in tree.
	Settle(ctx context.Context, tree string, reserved, delta int64) error
	// Move records n bytes moved between trees; false when the
	// destination's quota has no room for them.
	Move(ctx context.Context, from, to string, n int64) (bool, error)
	// Space is what statvfs shows of tree: used (stored and reserved) of
	// quota; limited false when no quota applies.
	Space(ctx context.Context, tree string) (used, quota int64, limited bool, err error)
}

// IsUploadTemp reports whether a file name is that of an upload in
// progress, which the storage reconcile pass does not count.
func IsUploadTemp(name string) bool { return isTemp(name) }

// errQuotaExceeded is the answer to a write that a quota has no room for.
var errQuotaExceeded = status(fxFailure, "quota exceeded")

// quotaTimeout bounds each call to the Quota.
const quotaTimeout = 5 * time.Second

// meter is a handle's account of its writes.
type meter struct {
	pool   *pool // nil: not metered (no Quota, or not open for writing)
	base   int64 // the file's size already counted: at open in place; 0 for an atomic upload
	size   int64 // the file's size as the handle's writes and truncations left it
	held   int64 // room taken from the pool and not yet given back
	credit int64 // of held, what the Quota could not be asked for
}

// tree names the tree loc is in for the Quota: "" outside the trees.
func (s *Session) tree(loc *location) string {
	switch {
	case s.cfg.Quota == nil:
		return ""
	case loc.place == atHome:
		return s.cfg.UserID
	case loc.place == atFolder:
		return loc.folder.ID
	}
	return ""
}

func (s *Session) quotaCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, quotaTimeout)
}

// settle tells the Quota what became of a reservation; failures are logged,
// the reconcile pass puts usage right.
func (s *Session) settle(tree string, reserved, delta int64) {
	if tree == "" || (reserved == 0 && delta == 0) {
		return
	}
	ctx, cancel := s.quotaCtx()
	defer cancel()
	if err := s.cfg.Quota.Settle(ctx, tree, reserved, delta); err != nil {
		s.log.Warn("sftp: quota not settled", "err", err, "reserved", reserved, "delta", delta)
	}
}

// CheckWrite makes sure the handle's file may grow to end bytes within the
// quotas, taking room from the session's pool as it grows (pool.go);
// errQuotaExceeded when it may not. Every write calls it first (startWrite:
// WRITE, the chunks of copy-data) and so do truncations that extend
// (counted at their apparent size, as sparse files are).
func (h *handle) CheckWrite(end int64) error {
	m := &h.meter
	if m.pool == nil || end <= m.size {
		return nil
	}
	if need := end - m.base - m.held; need > 0 {
		got, credit, err := m.pool.take(need)
		if err != nil {
			return err
		}
		m.held += got
		m.credit += credit
	}
	m.size = end
	return nil
}

// writeEnd is where a write of n bytes at off ends: at the file's end when
// appending.
func (h *handle) writeEnd(off, n int64) int64 {
	if h.appending {
		return h.meter.size + n
	}
	return off + n
}

// resized records a truncation to size after CheckWrite allowed it.
func (h *handle) resized(size int64) { h.meter.size = size }

// settleQuota settles the handle at close: delta is what the file now
// stores beyond what was counted (0 for an upload discarded, or a file
// written in place whose close failed). The client's close does not wait
// for the Quota (pool.giveBack).
func (h *handle) settleQuota(delta int64) {
	m := &h.meter
	if m.pool == nil {
		return
	}
	m.pool.giveBack(m.held, m.credit, delta)
	m.held, m.credit = 0, 0
}

// startMeter starts the handle's meter at open: size is what the file
// holds (0 for an atomic upload's new file).
func (h *handle) startMeter(loc *location, size int64) {
	if t := h.s.tree(loc); t != "" && h.canWrite {
		h.meter = meter{pool: h.s.pool(t), base: size, size: size}
	}
}

// treeSize is what an entry holds: a file's size, or everything in a
// directory (a rename of a directory between trees moves all of it).
func treeSize(root storage.Tree, rel string) (int64, error) {
	var n int64
	err := fs.WalkDir(storage.FS(root), rel, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && !isTemp(d.Name()) {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

// chargeMove charges a rename of src to dst to the Quota before it happens:
// between trees what src holds moves from one to the other (refused with
// errQuotaExceeded when the destination's quota has no room), and a file
// that posix-rename replaces is freed. Call done with whether the rename
// happened.
func (s *Session) chargeMove(src, dst *location, replace bool) (done func(ok bool), err error) {
	from, to := s.tree(src), s.tree(dst)
	if to == "" {
		return func(bool) {}, nil
	}
	var replaced goneFile
	if replace {
		replaced = fileAt(dst.root, dst.rel)
	}
	var n int64
	if from != to {
		if n, err = treeSize(src.root, src.rel); err != nil {
			return nil, s.fail("rename", src, err)
		}
		ctx, cancel := s.quotaCtx()
		ok, err := s.cfg.Quota.Move(ctx, from, to, n)
		cancel()
		switch {
		case err != nil:
			s.log.Warn("sftp: quota unavailable, rename allowed", "err", err)
			n = 0 // the reconcile pass will move it
		case !ok:
			return nil, errQuotaExceeded
		}
	}
	return func(ok bool) {
		switch {
		case !ok && n != 0:
			ctx, cancel := s.quotaCtx()
			defer cancel()
			if _, err := s.cfg.Quota.Move(ctx, to, from, n); err != nil {
				s.log.Warn("sftp: quota not settled", "err", err)
			}
		case ok:
			s.settle(to, 0, -replaced.freed())
		}
	}, nil
}

// quotaSpace makes sp, the file system's numbers, the account's: with a
// quota, its size and what is left of it; without one, what the account
// stores and the room the file system has left for it. Neither the host's
// size nor other accounts' use shows. In the virtual directories it is the
// user's home's numbers.
func (s *Session) quotaSpace(loc *location, sp *storage.Space) error {
	tree := s.tree(loc)
	if tree == "" {
		tree = s.cfg.UserID
	}
	ctx, cancel := s.quotaCtx()
	used, quota, limited, err := s.cfg.Quota.Space(ctx, tree)
	cancel()
	if err != nil {
		s.log.Warn("sftp: quota unavailable for statvfs", "err", err)
		return errUnavailable
	}
	bs := max(sp.BlockSize, 1)
	usedBlocks := (uint64(max(used, 0)) + bs - 1) / bs
	if limited {
		sp.Blocks = uint64(quota) / bs
		sp.BlocksAvail = sp.Blocks - min(usedBlocks, sp.Blocks)
		sp.BlocksFree = sp.BlocksAvail
	} else {
		sp.BlocksFree = sp.BlocksAvail
		sp.Blocks = usedBlocks + sp.BlocksAvail
	}
	sp.Files, sp.FilesFree = 0, 0
	return nil
}
