package storageuse

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/skiffhq/skiff/tenant"
)

// Files is what the reconcile pass walks; sftp.StorageFiles implements it
// on the account storage.
type Files interface {
	// Accounts lists the accounts that have storage.
	Accounts() ([]string, error)
	// TreeSizes walks an account's trees and returns the bytes of each by
	// tree ID: apparent sizes of regular files, without uploads in progress.
	TreeSizes(accountID string) (map[string]int64, error)
}

// treeState is a tree's row as the reconcile pass reads it.
type treeState struct {
	Tree     string `db:"tree_id"`
	Used     int64  `db:"used_bytes"`
	Version  int64  `db:"version"`
	Reserved bool   `db:"reserved"`
}

func readTrees(ctx context.Context, q tenant.Queryer, accountID string) (map[string]treeState, error) {
	var rows []treeState
	err := q.SelectContext(ctx, &rows, `SELECT t.tree_id, coalesce(u.used_bytes, 0) AS used_bytes, coalesce(u.version, 0) AS version,
			EXISTS (SELECT 1 FROM storage_reservations r WHERE r.account_id = $1 AND r.tree_id = t.tree_id AND r.expires_at > now()) AS reserved
		FROM (SELECT tree_id FROM storage_usage WHERE account_id = $1
			UNION SELECT tree_id FROM storage_reservations WHERE account_id = $1) t
		LEFT JOIN storage_usage u ON u.account_id = $1 AND u.tree_id = t.tree_id`, accountID)
	if err != nil {
		return nil, tenant.DBError(err)
	}
	m := make(map[string]treeState, len(rows))
	for _, r := range rows {
		m[r.Tree] = r
	}
	return m, nil
}

// ErrUnknownAccount is Reconcile's answer for files of an account the
// database does not have: nothing is recorded for them.
var ErrUnknownAccount = errors.New("storage: files of an account the database does not have")

// Reconcile sets the usage of an account's trees from a walk of them, and
// drops its expired reservations. A tree written to while it was walked
// (its usage changed, or a session holds a reservation for it) is left for
// the next pass, so the walk never overwrites a change it did not see. It
// returns the number of trees whose usage it corrected.
func (s *Service) Reconcile(ctx context.Context, files Files, accountID string) (int, error) {
	var before map[string]treeState
	known := false
	err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		if err := q.GetContext(ctx, &known, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)`, accountID); err != nil || !known {
			return tenant.DBError(err)
		}
		var err error
		before, err = readTrees(ctx, q, accountID)
		return err
	})
	if err != nil {
		return 0, err
	}
	if !known {
		return 0, ErrUnknownAccount
	}
	sizes, err := files.TreeSizes(accountID)
	if err != nil {
		return 0, err
	}
	fixed := 0
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		fixed = 0
		if err := lockAccount(ctx, q, accountID); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM storage_reservations WHERE account_id = $1 AND expires_at <= now()`, accountID); err != nil {
			return tenant.DBError(err)
		}
		now, err := readTrees(ctx, q, accountID)
		if err != nil {
			return err
		}
		trees := make(map[string]bool, len(sizes)+len(now))
		for t := range sizes {
			trees[t] = true
		}
		for t := range now {
			trees[t] = true
		}
		for t := range trees {
			cur, was := now[t], before[t]
			if cur.Reserved || was.Reserved || cur.Version != was.Version || cur.Used == sizes[t] {
				continue
			}
			if err := addUsage(ctx, q, accountID, t, sizes[t]-cur.Used); err != nil {
				return err
			}
			fixed++
		}
		if fixed == 0 {
			return nil
		}
		return alertTx(ctx, q, accountID, false)
	})
	return fixed, err
}

// ReconcileAll runs Reconcile on every account that has storage, logging
// the corrections and the accounts it could not reconcile (to
// slog.Default when log is nil).
func (s *Service) ReconcileAll(ctx context.Context, files Files, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	accounts, err := files.Accounts()
	if err != nil {
		return err
	}
	for _, id := range accounts {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, err := s.Reconcile(ctx, files, id)
		switch {
		case ctx.Err() != nil:
			return ctx.Err() // stopped midway: not a failure
		case errors.Is(err, ErrUnknownAccount):
			// Accounts are never removed: a database restored from before
			// the account was made, or files put under the prefix by hand.
			log.Warn("storage: the storage holds files of an account the database does not have; they are left alone and count for no one "+
				"(a database restored from before the account was made? see docs/OPERATIONS.md#backup-and-restore)", "account", id)
		case err != nil:
			log.Warn("storage: reconcile failed", "account", id, "err", err)
		case n > 0:
			log.Info("storage: usage corrected by reconcile", "account", id, "trees", n)
		}
	}
	return nil
}

// DefaultReconcileInterval is how often serve reconciles unless
// --storage-reconcile-every says otherwise.
const DefaultReconcileInterval = 6 * time.Hour

// RunReconcile reconciles every account at once (start-up: usage right
// after a crash) and then every interval (0: only at start-up), until ctx
// ends.
func (s *Service) RunReconcile(ctx context.Context, files Files, interval time.Duration, log *slog.Logger) error {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		if err := s.ReconcileAll(ctx, files, log); err != nil && ctx.Err() == nil {
			log.Warn("storage: reconcile pass failed; retrying on the next pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		}
	}
}
