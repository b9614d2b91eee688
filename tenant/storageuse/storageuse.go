// Package storageuse keeps account storage within its quotas: the quotas
// (an account's, set by support staff; a user's own, set by owners and
// administrators), the usage of every tree of an account's storage, the
// reservations SFTP sessions hold for writes in progress, the owners' emails
// at 80 % and 100 %, and the reconcile pass that corrects drift.
//
// PostgreSQL is the store of record (migration 00070): storage_usage holds
// the bytes of each tree (a user's home, a project folder) and whose quota it
// counts against; storage_reservations the bytes each session has set aside.
// A session's writes are checked against its reservation in memory; the
// session reserves chunks (Meter.Reserve) ahead of its writes, and a file's
// close settles (Meter.Settle): the file's real growth is recorded and the
// reservation it used returned; the session returns the rest when it stops
// writing or ends (sftp/vfs/pool.go). Every change of an account's numbers
// takes the account's advisory lock, so two nodes never both grant the last
// bytes. A node that dies leaves reservations that expire (ReservationTTL
// after their session last reserved) and usage that the next reconcile pass
// (Reconcile) sets from a walk of the trees.
package storageuse

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
)

// DefaultReservationTTL is how long a reservation counts unless renewed: a
// session that asks for more renews it.
const DefaultReservationTTL = time.Hour

// MaxQuota is the largest quota accepted: 1 EiB.
const MaxQuota = int64(1) << 60

// Service reads and sets quotas and usage.
type Service struct {
	*tenant.Base
	// ReservationTTL is DefaultReservationTTL when zero.
	ReservationTTL time.Duration
}

// Storage is what a quota allows and what is used of it.
type Storage struct {
	Used  int64  // bytes stored
	Quota *int64 // bytes allowed; nil: no quota
}

// AccountStorage is an account's usage and quota: owners, administrators
// and support staff.
func (s *Service) AccountStorage(ctx context.Context, accountID string) (*Storage, error) {
	m, refused, err := s.AccountStorageOf(ctx, []string{accountID})
	return tenant.OneOf(accountID, m, refused, err, "account")
}

// AccountStorageOf is AccountStorage for many accounts in one statement
// (support staff's page of accounts), by account ID; accounts the principal
// may not see are refused as AccountStorage refuses them, unknown ones are
// absent.
func (s *Service) AccountStorageOf(ctx context.Context, accountIDs []string) (map[string]*Storage, map[string]error, error) {
	out := make(map[string]*Storage, len(accountIDs))
	refused, err := s.ReadAdminAccounts(ctx, accountIDs, "the account's storage", func(q tenant.Queryer, ids []string) error {
		var rows []struct {
			ID    string `db:"id"`
			Quota *int64 `db:"storage_quota"`
			Used  int64  `db:"used"`
		}
		if err := q.SelectContext(ctx, &rows, `SELECT a.id, a.storage_quota,
			least((SELECT coalesce(sum(used_bytes), 0) FROM storage_usage WHERE account_id = a.id), 9223372036854775807)::bigint AS used
			FROM accounts a WHERE a.id = ANY($1::uuid[])`, tenant.UUIDArray(ids)); err != nil {
			return tenant.DBError(err)
		}
		for _, r := range rows {
			out[r.ID] = &Storage{Used: r.Used, Quota: r.Quota}
		}
		return nil
	})
	return out, refused, err
}

// UserStorage is a user's usage (their home and the project folders they
// made) and their own quota: the user, the account's owners and
// administrators, and support staff; FORBIDDEN for anyone else.
func (s *Service) UserStorage(ctx context.Context, u *tenant.User) (*Storage, error) {
	if !mayReadUserStorage(tenant.PrincipalFrom(ctx), u.AccountID, u.ID) {
		return nil, tenant.Errorf(tenant.EForbidden, "only the user, the account's owners and administrators and support staff see a user's storage")
	}
	m, err := s.UserStorageOf(ctx, u.AccountID, []string{u.ID})
	if err != nil {
		return nil, err
	}
	if m[u.ID] == nil {
		return nil, tenant.NotFound("user")
	}
	return m[u.ID], nil
}

// UserStorageOf is UserStorage for many users of one account, by user ID,
// in one statement (a page of users); users whose storage the principal may
// not read are absent.
func (s *Service) UserStorageOf(ctx context.Context, accountID string, userIDs []string) (map[string]*Storage, error) {
	p := tenant.PrincipalFrom(ctx)
	out := make(map[string]*Storage, len(userIDs))
	userIDs = slices.DeleteFunc(slices.Clone(userIDs), func(id string) bool { return !mayReadUserStorage(p, accountID, id) })
	if len(userIDs) == 0 {
		return out, nil
	}
	err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var rows []struct {
			ID    string `db:"id"`
			Quota *int64 `db:"storage_quota"`
			Used  int64  `db:"used"`
		}
		if err := q.SelectContext(ctx, &rows, `SELECT u.id, u.storage_quota,
			least((SELECT coalesce(sum(used_bytes), 0) FROM storage_usage WHERE account_id = u.account_id AND user_id = u.id), 9223372036854775807)::bigint AS used
			FROM users u WHERE u.account_id = $1 AND u.id = ANY($2::uuid[])`, accountID, tenant.UUIDArray(userIDs)); err != nil {
			return tenant.DBError(err)
		}
		for _, r := range rows {
			out[r.ID] = &Storage{Used: r.Used, Quota: r.Quota}
		}
		return nil
	})
	return out, err
}

// mayReadUserStorage: the user, the account's owners and administrators, and support staff.
func mayReadUserStorage(p *tenant.Principal, accountID, userID string) bool {
	return p.IsStaff() || p.IsAdmin(accountID) || (p.InAccount(accountID) && p.ID == userID)
}

func checkQuota(field string, bytes *int64) error {
	if bytes != nil && (*bytes < 0 || *bytes > MaxQuota) {
		return tenant.Invalid(field, "a quota is between 0 and %d bytes, or null for none", MaxQuota)
	}
	return nil
}

// SetStorageQuota sets an account's quota (nil: none). Support staff only;
// audited. Uploads beyond it are refused from the sessions' next request
// for more room; nothing stored is deleted.
func (s *Service) SetStorageQuota(ctx context.Context, accountID string, bytes *int64) (*tenant.Account, error) {
	if _, err := tenant.RequireStaff(ctx); err != nil {
		return nil, err
	}
	if err := checkQuota("bytes", bytes); err != nil {
		return nil, err
	}
	if !tenant.IsUUID(accountID) {
		return nil, tenant.NotFound("account")
	}
	var a *tenant.Account
	err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var before *int64
		if err := q.GetContext(ctx, &before, `SELECT storage_quota FROM accounts WHERE id = $1 FOR UPDATE`, accountID); err != nil {
			return tenant.NotFoundAs(tenant.DBError(err), "account")
		}
		a = new(tenant.Account)
		if err := q.GetContext(ctx, a, `UPDATE accounts SET storage_quota = $2, updated_at = $3 WHERE id = $1
			RETURNING `+tenant.AccountColumns, accountID, bytes, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		if err := audit.Record(ctx, q, accountID, audit.Event{Kind: "account.storage_quota_changed", TargetKind: "Account", TargetID: accountID,
			Before: map[string]any{"storageQuota": before}, After: map[string]any{"storageQuota": bytes}}); err != nil {
			return err
		}
		return alertTx(ctx, q, accountID, false)
	})
	return tenant.Result(a, err)
}

// SetUserStorageQuota sets a user's own quota (nil: none), which applies on
// top of the account's to their home and the project folders they made.
// Owners and administrators; only an owner changes an owner's
// (tenant.ErrOwnersOnly). Audited.
func (s *Service) SetUserStorageQuota(ctx context.Context, userID string, bytes *int64) (*tenant.User, error) {
	if err := checkQuota("bytes", bytes); err != nil {
		return nil, err
	}
	return s.ChangeUser(ctx, userID, func(p *tenant.Principal, q tenant.Queryer, u *tenant.User) error {
		var before *int64
		if err := q.GetContext(ctx, &before, `SELECT storage_quota FROM users WHERE id = $1`, u.ID); err != nil {
			return tenant.DBError(err)
		}
		if _, err := q.ExecContext(ctx, `UPDATE users SET storage_quota = $2, updated_at = $3 WHERE id = $1`, u.ID, bytes, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, u.AccountID, audit.Event{Kind: "user.storage_quota_changed", TargetKind: "User", TargetID: u.ID,
			Before: map[string]any{"storageQuota": before}, After: map[string]any{"storageQuota": bytes}})
	})
}

// lockAccount takes the account's storage lock until the transaction ends:
// every change of its usage or reservations holds it.
func lockAccount(ctx context.Context, q tenant.Queryer, accountID string) error {
	_, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('skiff.storage:' || $1, 0))`, accountID)
	return tenant.DBError(err)
}

// alertTx emails the account's owners when its usage crossed 80 % or 100 %
// of its quota since they were last told (refused: a write was just refused
// for the account's quota, which counts as reaching 100 %). The level goes
// back to 0 once usage falls below 80 %, so the next crossing emails again.
func alertTx(ctx context.Context, q tenant.Queryer, accountID string, refused bool) error {
	var st struct {
		Name  string `db:"name"`
		Quota *int64 `db:"storage_quota"`
		Alert int    `db:"storage_alert"`
		Used  int64  `db:"used"`
	}
	if err := q.GetContext(ctx, &st, `SELECT name, storage_quota, storage_alert,
		least((SELECT coalesce(sum(used_bytes), 0) FROM storage_usage WHERE account_id = a.id), 9223372036854775807)::bigint AS used
		FROM accounts a WHERE id = $1`, accountID); err != nil {
		return tenant.DBError(err)
	}
	level := 0
	if st.Quota != nil {
		quota := *st.Quota
		switch {
		case refused || st.Used >= quota:
			level = 100
		case st.Used*5 >= quota*4: // quota ≤ MaxQuota: no overflow
			level = 80
		}
	}
	switch {
	case level > st.Alert:
	case level == 0 && st.Alert != 0:
		_, err := q.ExecContext(ctx, `UPDATE accounts SET storage_alert = 0 WHERE id = $1`, accountID)
		return tenant.DBError(err)
	default:
		return nil
	}
	if _, err := q.ExecContext(ctx, `UPDATE accounts SET storage_alert = $2 WHERE id = $1`, accountID, level); err != nil {
		return tenant.DBError(err)
	}
	var owners []struct {
		Name  string `db:"name"`
		Email string `db:"email"`
	}
	if err := q.SelectContext(ctx, &owners, `SELECT name, email FROM users
		WHERE account_id = $1 AND role = 'OWNER' AND deleted_at IS NULL ORDER BY created_at, id`, accountID); err != nil {
		return tenant.DBError(err)
	}
	for _, o := range owners {
		if err := outbox.Enqueue(ctx, q, accountID, outbox.Email{To: o.Email, Data: outbox.StorageQuotaData{
			OwnerName: o.Name, AccountName: st.Name, Percent: level, Full: level == 100,
			Used: FormatBytes(st.Used), Quota: FormatBytes(*st.Quota),
		}}); err != nil {
			return err
		}
	}
	return nil
}

// FormatBytes writes a byte count for people: "512 B", "1.5 KiB", "8.0 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
