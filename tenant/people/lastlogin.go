package people

import (
	"context"
	"time"

	"github.com/skiffhq/skiff/tenant"
)

// LoginTimes is when a user last logged in, over the API and over SFTP.
type LoginTimes struct {
	UserID string     `db:"id"`
	API    *time.Time `db:"api"`  // their newest API session's start (login)
	SFTP   *time.Time `db:"sftp"` // their last SFTP login, to the minute
}

// Last is the later of the two, or nil if they never logged in.
func (l *LoginTimes) Last() *time.Time {
	switch {
	case l.API == nil:
		return l.SFTP
	case l.SFTP == nil || l.API.After(*l.SFTP):
		return l.API
	}
	return l.SFTP
}

// LoginTimesOfUsers returns the login times of the account's users with the
// given IDs, in one statement, for those the caller may see (as UsersByID:
// owners, administrators and staff see everyone, a user themselves); the
// others are missing from the map. An SFTP login is recorded at most once
// a minute per user (see sftplogin.Directory.MarkLogin), so SFTP may be up
// to a minute behind.
func (s *Service) LoginTimesOfUsers(ctx context.Context, accountID string, ids []string) (map[string]*LoginTimes, error) {
	p := tenant.PrincipalFrom(ctx)
	out := make(map[string]*LoginTimes, len(ids))
	if !p.InAccount(accountID) && !p.IsStaff() {
		return out, nil
	}
	if !p.IsStaff() && !p.IsAdmin(accountID) {
		ids = []string{p.ID} // if asked for at all; filtered below
	}
	err := s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		var rows []*LoginTimes
		if err := q.SelectContext(ctx, &rows, `SELECT u.id,
			(SELECT max(t.created_at) FROM tokens t WHERE t.account_id = u.account_id AND t.user_id = u.id) AS api,
			c.last_login_at AS sftp
			FROM users u LEFT JOIN sftp_credentials c ON c.account_id = u.account_id AND c.user_id = u.id
			WHERE u.account_id = $1 AND u.id = ANY($2::uuid[])`, accountID, tenant.UUIDArray(ids)); err != nil {
			return tenant.DBError(err)
		}
		for _, r := range rows {
			out[r.UserID] = r
		}
		return nil
	})
	return out, err
}
