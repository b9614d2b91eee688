package storageuse

import (
	"context"

	"github.com/google/uuid"

	"github.com/skiffhq/skiff/tenant"
)

// Meter is one SFTP session's account of what it writes. Trees are named by
// their ID, as in storage: a user's ID for their home, a folder's ID for a
// project folder. A Meter is safe for concurrent use.
type Meter struct {
	s         *Service
	accountID string
	session   string // names the session's reservations
}

// Meter returns a new session's meter in accountID.
func (s *Service) Meter(accountID string) *Meter {
	return &Meter{s: s, accountID: accountID, session: uuid.NewString()}
}

func (s *Service) ttl() int64 {
	if s.ReservationTTL > 0 {
		return int64(s.ReservationTTL.Seconds())
	}
	return int64(DefaultReservationTTL.Seconds())
}

// room is what the quotas allow a tree and what they already hold. The sums
// are capped at the largest int64 (9223372036854775807), as are a
// reservation's and a tree's bytes: a client writing at offsets near 2^63
// in an account without a quota must not make them overflow, which would
// fail every quota check of the account (and a failed check lets a write
// through, pool.go); capped, an account quota is full, and no other user's
// quota is touched.
type room struct {
	Owner        string `db:"owner"` // whose quota the tree counts against
	AccountQuota *int64 `db:"account_quota"`
	UserQuota    *int64 `db:"user_quota"`
	AccountUsed  int64  `db:"account_used"` // stored and reserved
	UserUsed     int64  `db:"user_used"`
}

// free is the room left for n more bytes: the smaller of what the account's
// and the owner's quotas leave (-1: no quota), and whether the account's is
// the smaller.
func (r *room) free() (free int64, account bool) {
	free = -1
	if r.AccountQuota != nil {
		free, account = max(*r.AccountQuota-r.AccountUsed, 0), true
	}
	if r.UserQuota != nil {
		if uf := max(*r.UserQuota-r.UserUsed, 0); free < 0 || uf < free {
			free, account = uf, false
		}
	}
	return free, account
}

func (m *Meter) room(ctx context.Context, q tenant.Queryer, tree string) (*room, error) {
	var r room
	err := q.GetContext(ctx, &r, `WITH o AS (SELECT coalesce(
			(SELECT created_by FROM project_folders WHERE account_id = $1 AND id = $2), $2::uuid) AS id)
		SELECT o.id AS owner,
			(SELECT storage_quota FROM accounts WHERE id = $1) AS account_quota,
			(SELECT storage_quota FROM users WHERE account_id = $1 AND id = o.id) AS user_quota,
			least((SELECT coalesce(sum(used_bytes), 0) FROM storage_usage WHERE account_id = $1)
			+ (SELECT coalesce(sum(bytes), 0) FROM storage_reservations WHERE account_id = $1 AND expires_at > now()),
				9223372036854775807)::bigint AS account_used,
			least((SELECT coalesce(sum(used_bytes), 0) FROM storage_usage WHERE account_id = $1 AND user_id = o.id)
			+ (SELECT coalesce(sum(bytes), 0) FROM storage_reservations WHERE account_id = $1 AND user_id = o.id AND expires_at > now()),
				9223372036854775807)::bigint AS user_used
		FROM o`, m.accountID, tree)
	return &r, tenant.DBError(err)
}

// Reserve sets aside more bytes for the session's writes to tree: want
// bytes (a chunk, so that the next writes need not ask) when the quotas
// have room for them, else need bytes (what the write at hand needs: near
// the quota each write asks, so that one upload does not take the room
// another needs), and returns how many it set aside: 0 when a quota (the
// account's, or the tree owner's) has no room for need. A refusal for the account's quota counts
// as reaching 100 % for the owners' email. need 0 asks for want bytes or
// none (room ahead of the writes: none is no refusal), and need and want 0
// set nothing aside. Every call renews the session's reservation for tree
// (ReservationTTL from now); one that expired is not renewed: its bytes no
// longer count, and a new reservation starts from 0.
func (m *Meter) Reserve(ctx context.Context, tree string, need, want int64) (granted int64, err error) {
	if !tenant.IsUUID(tree) || need < 0 || want < need {
		return 0, tenant.Invalid("tree", "bad reservation")
	}
	err = m.s.InAccount(ctx, m.accountID, func(q tenant.Queryer) error {
		granted = 0
		if err := lockAccount(ctx, q, m.accountID); err != nil {
			return err
		}
		n, owner := want, ""
		if want > 0 {
			r, err := m.room(ctx, q, tree)
			if err != nil {
				return err
			}
			owner = r.Owner
			if free, account := r.free(); free >= 0 && want > free {
				if need > free {
					if account {
						return alertTx(ctx, q, m.accountID, true)
					}
					return nil
				}
				n = need
			}
		}
		if n == 0 {
			_, err := q.ExecContext(ctx, `UPDATE storage_reservations SET expires_at = now() + make_interval(secs => $4)
				WHERE account_id = $1 AND session_id = $2 AND tree_id = $3 AND expires_at > now()`,
				m.accountID, m.session, tree, m.s.ttl())
			return tenant.DBError(err)
		}
		_, err := q.ExecContext(ctx, `INSERT INTO storage_reservations (account_id, session_id, tree_id, user_id, bytes, expires_at)
			VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
			ON CONFLICT (account_id, session_id, tree_id) DO UPDATE
			SET bytes = least(CASE WHEN storage_reservations.expires_at > now() THEN storage_reservations.bytes ELSE 0 END::numeric
					+ EXCLUDED.bytes, 9223372036854775807)::bigint,
				expires_at = EXCLUDED.expires_at`,
			m.accountID, m.session, tree, owner, n, m.s.ttl())
		if err == nil {
			granted = n
		}
		return tenant.DBError(err)
	})
	return granted, err
}

// Settle returns reserved bytes of the session's reservation for tree and
// records delta bytes (negative: freed) as stored in it: a file's close
// after its writes, a removal, a truncation.
func (m *Meter) Settle(ctx context.Context, tree string, reserved, delta int64) error {
	if reserved == 0 && delta == 0 {
		return nil
	}
	if !tenant.IsUUID(tree) {
		return tenant.NotFound("tree")
	}
	return m.s.InAccount(ctx, m.accountID, func(q tenant.Queryer) error {
		if err := lockAccount(ctx, q, m.accountID); err != nil {
			return err
		}
		if reserved > 0 {
			if _, err := q.ExecContext(ctx, `UPDATE storage_reservations SET bytes = greatest(bytes - $4, 0)
				WHERE account_id = $1 AND session_id = $2 AND tree_id = $3`, m.accountID, m.session, tree, reserved); err != nil {
				return tenant.DBError(err)
			}
			if _, err := q.ExecContext(ctx, `DELETE FROM storage_reservations
				WHERE account_id = $1 AND session_id = $2 AND tree_id = $3 AND bytes = 0`, m.accountID, m.session, tree); err != nil {
				return tenant.DBError(err)
			}
		}
		if delta == 0 {
			return nil
		}
		if err := addUsage(ctx, q, m.accountID, tree, delta); err != nil {
			return err
		}
		return alertTx(ctx, q, m.accountID, false)
	})
}

// addUsage adds delta (negative: frees) to a tree's usage, never below 0.
func addUsage(ctx context.Context, q tenant.Queryer, accountID, tree string, delta int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO storage_usage (account_id, tree_id, user_id, used_bytes, version)
		VALUES ($1, $2, coalesce((SELECT created_by FROM project_folders WHERE account_id = $1 AND id = $2), $2::uuid), greatest($3::bigint, 0), 1)
		ON CONFLICT (account_id, tree_id) DO UPDATE
		SET used_bytes = greatest(least(storage_usage.used_bytes::numeric + $3::bigint, 9223372036854775807), 0)::bigint,
			version = storage_usage.version + 1`,
		accountID, tree, delta)
	return tenant.DBError(err)
}

// Move records n bytes moved from one tree to another (a rename between My
// Files and a project folder). It reports false, recording nothing, when the
// trees count against different users and the destination's owner has no
// room for them; a move never changes the account's total.
func (m *Meter) Move(ctx context.Context, from, to string, n int64) (ok bool, err error) {
	if from == to || n == 0 {
		return true, nil
	}
	if !tenant.IsUUID(from) || !tenant.IsUUID(to) {
		return false, tenant.NotFound("tree")
	}
	err = m.s.InAccount(ctx, m.accountID, func(q tenant.Queryer) error {
		if err := lockAccount(ctx, q, m.accountID); err != nil {
			return err
		}
		src, err := m.room(ctx, q, from)
		if err != nil {
			return err
		}
		dst, err := m.room(ctx, q, to)
		if err != nil {
			return err
		}
		if src.Owner != dst.Owner && dst.UserQuota != nil && n > *dst.UserQuota-dst.UserUsed {
			return nil
		}
		ok = true
		if err := addUsage(ctx, q, m.accountID, from, -n); err != nil {
			return err
		}
		return addUsage(ctx, q, m.accountID, to, n)
	})
	return ok, err
}

// Space is what statvfs shows for tree: the quota that leaves the least room
// (the account's or the tree owner's) and what is stored and reserved of it.
// limited is false when neither has a quota.
func (m *Meter) Space(ctx context.Context, tree string) (used, quota int64, limited bool, err error) {
	if !tenant.IsUUID(tree) {
		return 0, 0, false, tenant.NotFound("tree")
	}
	var r *room
	err = m.s.InAccount(ctx, m.accountID, func(q tenant.Queryer) error {
		var err error
		r, err = m.room(ctx, q, tree)
		return err
	})
	if err != nil {
		return 0, 0, false, err
	}
	free, account := r.free()
	switch {
	case free < 0:
		return r.AccountUsed, 0, false, nil
	case account:
		return r.AccountUsed, *r.AccountQuota, true, nil
	}
	return r.UserUsed, *r.UserQuota, true, nil
}
