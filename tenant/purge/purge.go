// Package purge deletes account files for good once their grace period has
// passed: a deleted user's home when whoever deleted them chose to delete
// their files, and a deleted project folder's files.
//
// A deletion schedules a purge in its own transaction (ScheduleTx): one row
// of file_purges (migration 00030) whose purge_after is the deletion's time
// plus Grace. Until then the files stay where they are, out of every user's
// reach, and restoring the user cancels the purge (CancelTx). From then on
// PurgeDue, which serve runs on every node, claims due rows one at a time
// with SELECT ... FOR UPDATE SKIP LOCKED, deletes the tree, and deletes the
// row and records the purge in the account's audit trail in the same
// transaction: two nodes never purge one tree, a restore waits for a purge
// already under way, and a purge cut short is retried on the next pass. The
// state is all in PostgreSQL, so pending purges survive restarts.
package purge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
)

// DefaultGrace is how long deleted files stay restorable unless serve's
// --purge-grace says otherwise.
const DefaultGrace = 30 * 24 * time.Hour

// Kind is the kind of tree a purge deletes.
type Kind string

const (
	UserHome      Kind = "USER_HOME"      // a user's home (My Files)
	ProjectFolder Kind = "PROJECT_FOLDER" // a project folder's files
)

// Files removes trees of an account's storage for good; *storage.Local
// implements it. Removing a tree that does not exist is not an error.
type Files interface {
	RemoveUserHome(accountID, userID string) error
	RemoveProjectFolder(accountID, folderID string) error
}

// Service schedules, cancels and carries out purges.
type Service struct {
	*tenant.Base
	// Grace is how long after a deletion its files are deleted for good.
	Grace time.Duration
	// Files is the storage PurgeDue deletes from; PurgeDue fails without it.
	Files Files
}

// Pending is one scheduled purge.
type Pending struct {
	ID         string    `db:"id"`
	AccountID  string    `db:"account_id"`
	Kind       Kind      `db:"kind"`
	TargetID   string    `db:"target_id"`
	PurgeAfter time.Time `db:"purge_after"`
}

// ScheduleTx schedules the purge of one tree of the account q is scoped to,
// Grace from now, and returns when it will happen. Scheduling a tree again
// keeps the earlier time.
func (s *Service) ScheduleTx(ctx context.Context, q tenant.Queryer, accountID string, kind Kind, targetID string) (time.Time, error) {
	var at time.Time
	err := q.GetContext(ctx, &at, `INSERT INTO file_purges (account_id, kind, target_id, purge_after)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, kind, target_id) DO UPDATE SET purge_after = least(file_purges.purge_after, EXCLUDED.purge_after)
		RETURNING purge_after`, accountID, kind, targetID, s.Time().Add(s.Grace))
	return at, tenant.DBError(err)
}

// CancelTx cancels the purge of one tree, if one is scheduled, and reports
// whether there was one. If PurgeDue is deleting the tree at that moment,
// CancelTx waits for it and then finds nothing to cancel.
func (s *Service) CancelTx(ctx context.Context, q tenant.Queryer, kind Kind, targetID string) (bool, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM file_purges WHERE account_id = skiff_account() AND kind = $1 AND target_id = $2`, kind, targetID)
	if err != nil {
		return false, tenant.DBError(err)
	}
	n, err := res.RowsAffected()
	return n > 0, tenant.DBError(err)
}

// ScheduledTx returns when the tree's purge is due, or nil if none is scheduled.
func (s *Service) ScheduledTx(ctx context.Context, q tenant.Queryer, kind Kind, targetID string) (*time.Time, error) {
	var at []time.Time
	err := q.SelectContext(ctx, &at, `SELECT purge_after FROM file_purges WHERE account_id = skiff_account() AND kind = $1 AND target_id = $2`, kind, targetID)
	if err != nil || len(at) == 0 {
		return nil, tenant.DBError(err)
	}
	return &at[0], nil
}

// PurgeDue deletes every tree whose grace period has passed, one claimed
// row at a time, and returns how many it deleted. Rows another node is
// purging are skipped, not waited for. It runs as SYSTEM or staff (serve
// calls it with tenant.SystemContext); anyone else is FORBIDDEN.
func (s *Service) PurgeDue(ctx context.Context) (int, error) {
	if p := tenant.PrincipalFrom(ctx); !tenant.IsSystem(p) && !p.IsStaff() {
		return 0, tenant.Errorf(tenant.EForbidden, "only the system or support staff can purge deleted files")
	}
	if s.Files == nil {
		return 0, errors.New("purge: no file storage")
	}
	n := 0
	for {
		done, err := s.purgeOne(ctx)
		if err != nil || !done {
			return n, err
		}
		n++
	}
}

// purgeOne claims one due purge, deletes its tree and its row; false when
// nothing (not already claimed by another node) is due.
func (s *Service) purgeOne(ctx context.Context) (bool, error) {
	found := false
	err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		var due []Pending
		if err := tx.SelectContext(ctx, &due, `SELECT id, account_id, kind, target_id, purge_after FROM file_purges
			WHERE purge_after <= $1 ORDER BY purge_after, id LIMIT 1 FOR UPDATE SKIP LOCKED`, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		if len(due) == 0 {
			return nil
		}
		found = true
		p := due[0]
		if err := s.remove(p); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM file_purges WHERE id = $1`, p.ID); err != nil {
			return tenant.DBError(err)
		}
		target := "User"
		if p.Kind == ProjectFolder {
			target = "ProjectFolder"
		}
		return audit.Record(ctx, tx, p.AccountID, audit.Event{Kind: "files.purged", TargetKind: target, TargetID: p.TargetID,
			After: map[string]any{"kind": string(p.Kind), "purgeAfter": p.PurgeAfter}})
	})
	return found, err
}

func (s *Service) remove(p Pending) error {
	var err error
	switch p.Kind {
	case UserHome:
		err = s.Files.RemoveUserHome(p.AccountID, p.TargetID)
	case ProjectFolder:
		err = s.Files.RemoveProjectFolder(p.AccountID, p.TargetID)
	default:
		err = fmt.Errorf("unknown kind %q", p.Kind)
	}
	if err != nil {
		return fmt.Errorf("purge %s %s of account %s: %w", p.Kind, p.TargetID, p.AccountID, err)
	}
	return nil
}

// Run calls PurgeDue every interval until ctx ends, logging what it purged
// and what failed (a failed purge is retried on the next pass).
func (s *Service) Run(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.PurgeDue(tenant.SystemContext(ctx))
		if err != nil && ctx.Err() == nil {
			log.Warn("file purge failed; retrying on the next pass", "err", err, "purged", n)
		} else if n > 0 {
			log.Info("deleted files purged", "count", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
