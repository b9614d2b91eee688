package activity

import (
	"context"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sharing"
	"github.com/skiffhq/skiff/tenant/storageuse"
)

// FolderAccess is what the digests need of the project folders' rules
// (sharing.Service).
type FolderAccess interface {
	// MyRightsIn is the principal's rights in a folder: NOT_FOUND when
	// they have none.
	MyRightsIn(ctx context.Context, folderID string) ([]policy.Right, error)
	// SharedFolders lists the folders a user has rights in.
	SharedFolders(ctx context.Context, accountID, userID string) ([]sharing.SharedFolder, error)
}

var _ FolderAccess = (*sharing.Service)(nil)

func (s *Service) digestInterval() time.Duration {
	if s.DigestInterval <= 0 {
		return DefaultDigestInterval
	}
	return s.DigestInterval
}

func (s *Service) digestSettle() time.Duration {
	if s.DigestSettle <= 0 {
		return DefaultDigestSettle
	}
	return s.DigestSettle
}

// SetFolderUploadNotification turns the principal's upload digest of a
// project folder on or off. Any member of the folder (anyone with a right
// in it) may; to anyone else the folder does not exist. Turning it on
// again changes nothing; a digest lists the uploads made after it was
// turned on.
func (s *Service) SetFolderUploadNotification(ctx context.Context, folderID string, enabled bool) (bool, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil {
		return false, err
	}
	if _, err := s.Folders.MyRightsIn(ctx, folderID); err != nil {
		return false, err
	}
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		if enabled {
			_, err = q.ExecContext(ctx, `INSERT INTO folder_upload_notifications (account_id, folder_id, user_id, covered_until)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, p.AccountID, folderID, p.ID, s.Time())
		} else {
			_, err = q.ExecContext(ctx, `DELETE FROM folder_upload_notifications
				WHERE account_id = $1 AND folder_id = $2 AND user_id = $3`, p.AccountID, folderID, p.ID)
		}
		return tenant.DBError(err)
	})
	return enabled, err
}

// FolderUploadNotification reports whether the principal has the upload
// digest of the folder on.
func (s *Service) FolderUploadNotification(ctx context.Context, folderID string) (bool, error) {
	p, err := tenant.RequireUser(ctx)
	if err != nil || !tenant.IsUUID(folderID) {
		return false, err
	}
	var on bool
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		return tenant.DBError(q.GetContext(ctx, &on, `SELECT EXISTS (SELECT 1 FROM folder_upload_notifications
			WHERE account_id = $1 AND folder_id = $2 AND user_id = $3)`, p.AccountID, folderID, p.ID))
	})
	return on, err
}

// subscription is a due upload digest, with what its email needs.
type subscription struct {
	FolderID     string     `db:"folder_id"`
	UserID       string     `db:"user_id"`
	CoveredUntil time.Time  `db:"covered_until"`
	Email        string     `db:"email"`
	UserName     string     `db:"user_name"`
	UserDeleted  *time.Time `db:"user_deleted_at"`
	FolderName   string     `db:"folder_name"`
	AccountName  string     `db:"account_name"`
}

// digestUpload is a row of a digest's uploads.
type digestUpload struct {
	At    time.Time `db:"at"`
	By    string    `db:"by"`
	Path  string    `db:"path"`
	Bytes int64     `db:"bytes"`
	Total int       `db:"total"` // uploads in the digest, listed or not
}

// SendDigests enqueues the upload digests that are due: for each folder
// notification whose last digest is an interval old, one email listing
// the uploads completed in the folder since (interrupted ones are not
// uploads; the recipient's own are left out), if there were any. A
// recipient who can no longer see the folder gets nothing; their
// notification stays, and digests resume if they regain access. Several
// nodes may run it at once: each notification is taken under a row lock.
// It returns how many digests it enqueued.
func (s *Service) SendDigests(ctx context.Context) (int, error) {
	now := s.Time()
	due := now.Add(-s.digestInterval())
	var accounts []string
	err := s.DB.CrossTenant(ctx, tenant.ScopeActivity, func(tx *sqlx.Tx) error {
		return tenant.DBError(tx.SelectContext(ctx, &accounts, `SELECT DISTINCT account_id
			FROM folder_upload_notifications WHERE covered_until <= $1`, due))
	})
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, accountID := range accounts {
		n, err := s.sendAccountDigests(ctx, accountID, due, now.Add(-s.digestSettle()))
		sent += n
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

func (s *Service) sendAccountDigests(ctx context.Context, accountID string, due, until time.Time) (int, error) {
	sent := 0
	members := map[string][]sharing.SharedFolder{} // by user, read once per pass
	err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var subs []subscription
		if err := q.SelectContext(ctx, &subs, `SELECT n.folder_id, n.user_id, n.covered_until, u.email, u.name AS user_name,
				u.deleted_at AS user_deleted_at, f.name AS folder_name, a.name AS account_name
			FROM folder_upload_notifications n
			JOIN users u ON u.account_id = n.account_id AND u.id = n.user_id
			JOIN project_folders f ON f.account_id = n.account_id AND f.id = n.folder_id AND f.deleted_at IS NULL
			JOIN accounts a ON a.id = n.account_id
			WHERE n.account_id = $1 AND n.covered_until <= $2
			ORDER BY n.folder_id, n.user_id
			FOR UPDATE OF n SKIP LOCKED`, accountID, due); err != nil {
			return tenant.DBError(err)
		}
		for _, sub := range subs {
			ok, err := s.stillMember(ctx, accountID, sub, members)
			if err != nil {
				return err
			}
			if ok {
				if err := s.enqueueDigest(ctx, q, accountID, sub, until); err != nil {
					if err == errNoUploads {
						ok = false
					} else {
						return err
					}
				}
			}
			if ok {
				sent++
			}
			if _, err := q.ExecContext(ctx, `UPDATE folder_upload_notifications SET covered_until = $4
				WHERE account_id = $1 AND folder_id = $2 AND user_id = $3`, accountID, sub.FolderID, sub.UserID, until); err != nil {
				return tenant.DBError(err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return sent, nil
}

// stillMember reports whether the subscriber may still see the folder.
func (s *Service) stillMember(ctx context.Context, accountID string, sub subscription, cache map[string][]sharing.SharedFolder) (bool, error) {
	if sub.UserDeleted != nil {
		return false, nil
	}
	folders, ok := cache[sub.UserID]
	if !ok {
		var err error
		if folders, err = s.Folders.SharedFolders(ctx, accountID, sub.UserID); err != nil {
			return false, err
		}
		cache[sub.UserID] = folders
	}
	return slices.ContainsFunc(folders, func(f sharing.SharedFolder) bool { return f.ID == sub.FolderID }), nil
}

type digestError string

func (e digestError) Error() string { return string(e) }

const errNoUploads = digestError("no uploads")

func (s *Service) enqueueDigest(ctx context.Context, q tenant.Queryer, accountID string, sub subscription, until time.Time) error {
	var rows []digestUpload
	if err := q.SelectContext(ctx, &rows, `SELECT a.at, coalesce(nullif(u.name, ''), a.login) AS by,
			coalesce(a.folder_path, a.path) AS path, coalesce(a.bytes, 0) AS bytes,
			count(*) OVER () AS total
		FROM sftp_activity a LEFT JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id
		WHERE a.account_id = $1 AND a.folder_id = $2 AND a.action = 'UPLOAD' AND a.outcome = 'SUCCESS'
			AND a.at > $3 AND a.at <= $4 AND a.user_id <> $5
		ORDER BY a.at, a.id LIMIT $6`, accountID, sub.FolderID, sub.CoveredUntil, until, sub.UserID, outbox.MaxDigestUploads); err != nil {
		return tenant.DBError(err)
	}
	if len(rows) == 0 {
		return errNoUploads
	}
	data := outbox.FolderUploadDigestData{UserName: sub.UserName, AccountName: sub.AccountName, FolderName: sub.FolderName,
		Since: sub.CoveredUntil, Until: until, Count: rows[0].Total, More: rows[0].Total - len(rows)}
	for _, r := range rows {
		data.Uploads = append(data.Uploads, outbox.DigestUpload{At: r.At, By: r.By, Path: r.Path, Size: storageuse.FormatBytes(r.Bytes)})
	}
	return outbox.Enqueue(ctx, q, accountID, outbox.Email{To: sub.Email, Data: data})
}
