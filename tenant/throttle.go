package tenant

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// Throttling of failed logins, shared by the GraphQL login and SFTP password
// logins: after FreeLoginFailures failures for the same name (an email, an SFTP
// login) or from the same address, each further attempt must wait
// 2^(n-FreeLoginFailures) seconds after the last failure, up to maxLockout.
// Counts reset after a success or after failureMemory without failures. The
// counts live in PostgreSQL, so every Skiff node sees the same ones.
const (
	FreeLoginFailures = 5
	maxLockout        = 15 * time.Minute
	failureMemory     = time.Hour
)

// ThrottleKeys are the counters a login attempt touches: one for the name it
// names (kind "email" or "sftp") and one for the client's address.
func ThrottleKeys(kind, name string, remote netip.Addr) []string {
	// Whatever a client sends must make a storable key: valid text, no NUL, bounded.
	name = strings.ReplaceAll(strings.ToValidUTF8(strings.ToLower(strings.TrimSpace(name)), "?"), "\x00", "?")
	if len(name) > 256 {
		name = strings.ToValidUTF8(name[:256], "")
	}
	keys := []string{kind + ":" + name}
	if remote.IsValid() {
		keys = append(keys, "addr:"+throttleAddr(remote))
	}
	return keys
}

// throttleAddr groups IPv6 clients by /64, since one client usually holds a whole /64.
func throttleAddr(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// LoginWait is how long the next attempt on keys must still wait; 0 if none.
func LoginWait(ctx context.Context, q Queryer, keys []string, now time.Time) (time.Duration, error) {
	var rows []struct {
		Failures   int       `db:"failures"`
		LastFailed time.Time `db:"last_failed"`
	}
	if err := q.SelectContext(ctx, &rows, `SELECT failures, last_failed FROM auth_failures WHERE key = ANY($1)`, StringArray(keys)); err != nil {
		return 0, DBError(err)
	}
	var wait time.Duration
	for _, r := range rows {
		if r.Failures < FreeLoginFailures || now.Sub(r.LastFailed) > failureMemory {
			continue
		}
		lock := time.Duration(1<<min(r.Failures-FreeLoginFailures, 20)) * time.Second
		if w := r.LastFailed.Add(min(lock, maxLockout)).Sub(now); w > wait {
			wait = w
		}
	}
	return wait, nil
}

// recordLoginFailure counts a failed login for each key.
func RecordLoginFailure(ctx context.Context, q Queryer, keys []string, now time.Time) error {
	for _, k := range keys {
		_, err := q.ExecContext(ctx, `INSERT INTO auth_failures (key, failures, last_failed) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET
			  failures = CASE WHEN auth_failures.last_failed < $2 - $3::interval THEN 1 ELSE auth_failures.failures + 1 END,
			  last_failed = $2`, k, now, failureMemory.String())
		if err != nil {
			return DBError(err)
		}
	}
	return nil
}

// clearLoginFailures forgets the name's failures after a successful login.
// The address's count stays: one working account must not let a client wipe
// its record between guesses at others.
func ClearLoginFailures(ctx context.Context, q Queryer, keys []string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM auth_failures WHERE key = $1`, keys[0])
	return DBError(err)
}
