package tenant

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Throttling of password logins, shared by the GraphQL login and SFTP
// password logins (docs/SECURITY.md explains the numbers). Every attempt is
// counted in PostgreSQL, by one statement that increments and returns the
// counts, before the password is hashed: N parallel guesses count N, on
// every node. Three counters, each forgotten ThrottleWindow after its last
// attempt:
//   - per (login, client address): PairLimit attempts without a success
//     block that pair; the guesser blocks only themselves;
//   - per client address, across logins: AddressLimit attempts block the
//     address (password spraying);
//   - per login, across addresses: beyond SlowAfter attempts each attempt
//     waits SlowStep more, up to MaxSlow, and is then checked: strangers can
//     slow a victim's login down but never lock it.
//
// A success resets its login's and pair's counters and takes its attempt
// back from the address's; a password reset forgets the login's and all its
// pairs' (ForgetLogin). Key logins are never throttled by these counts.
const (
	PairLimit      = 10
	AddressLimit   = 50
	SlowAfter      = 10
	SlowStep       = 250 * time.Millisecond
	MaxSlow        = 5 * time.Second
	ThrottleWindow = 15 * time.Minute
)

// LoginAttempt is one counted password attempt.
type LoginAttempt struct {
	login, pair, addr string
	// Wait, when positive, refuses the attempt: the pair or the address is
	// blocked for that long (unless it stops trying, longer otherwise).
	Wait time.Duration
	// Slow is how long to wait before checking the password.
	Slow time.Duration
}

// throttleName makes whatever a client sends a storable key: valid text, no NUL, bounded.
func throttleName(name string) string {
	name = strings.ReplaceAll(strings.ToValidUTF8(strings.ToLower(strings.TrimSpace(name)), "?"), "\x00", "?")
	if len(name) > 256 {
		name = strings.ToValidUTF8(name[:256], "")
	}
	return name
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

// CountLoginAttempt counts a password attempt at name (kind "email" or
// "sftp") from remote, in its own transaction on scope, committed before it
// returns, and says whether and how the attempt may go on.
func (db *DB) CountLoginAttempt(ctx context.Context, scope Scope, kind, name string, remote netip.Addr, now time.Time) (*LoginAttempt, error) {
	a := &LoginAttempt{login: kind + ":" + throttleName(name)}
	keys := []string{a.login}
	if remote.IsValid() {
		addr := throttleAddr(remote)
		a.pair, a.addr = "pair:"+a.login+"|"+addr, "addr:"+addr
		keys = append(keys, a.pair, a.addr)
	}
	// Rows are locked in key order, so concurrent attempts never deadlock.
	slices.Sort(keys)
	var rows []struct {
		Key   string `db:"key"`
		Count int    `db:"failures"`
	}
	err := db.CrossTenant(ctx, scope, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `INSERT INTO auth_failures AS f (key, failures, last_failed)
			SELECT k, 1, $2 FROM unnest($1::text[]) WITH ORDINALITY AS t (k, i) ORDER BY i
			ON CONFLICT (key) DO UPDATE SET
			  failures = CASE WHEN f.last_failed < $2 - $3::interval THEN 1 ELSE f.failures + 1 END,
			  last_failed = $2
			RETURNING key, failures`, StringArray(keys), now, ThrottleWindow.String())
	})
	if err != nil {
		return nil, DBError(err)
	}
	for _, r := range rows {
		switch {
		case r.Key == a.pair && r.Count > PairLimit, r.Key == a.addr && r.Count > AddressLimit:
			a.Wait = ThrottleWindow
		case r.Key == a.login && r.Count > SlowAfter:
			a.Slow = min(time.Duration(r.Count-SlowAfter)*SlowStep, MaxSlow)
		}
	}
	return a, nil
}

// Pause waits a.Slow, or until ctx ends.
func (a *LoginAttempt) Pause(ctx context.Context) error {
	if a.Slow <= 0 {
		return nil
	}
	t := time.NewTimer(a.Slow)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Succeeded forgets the login's and the pair's attempts and takes this
// attempt back from the address's count: a working account must not let a
// client wipe its record between guesses at others.
func (a *LoginAttempt) Succeeded(ctx context.Context, q Queryer) error {
	_, err := q.ExecContext(ctx, `WITH gone AS (DELETE FROM auth_failures WHERE key = ANY($1))
		UPDATE auth_failures SET failures = greatest(failures - 1, 0) WHERE key = $2`,
		StringArray([]string{a.login, a.pair}), a.addr)
	return DBError(err)
}

// ForgetLogin forgets the attempts at the login name of kind (as
// CountLoginAttempt names it): its own count and those of its (login,
// address) pairs, from every address. The addresses' own counts stay, so
// that whoever may call it for a login cannot wipe an address's record of
// guessing at others. For a proof of ownership that replaces the password
// (a password reset): the attempts were at a password that is gone. It reads
// the whole table (a pair's key starts with its login's), which is fine for
// something as rare as a redeemed reset link.
func ForgetLogin(ctx context.Context, q Queryer, kind, name string) error {
	login := kind + ":" + throttleName(name)
	pair := "pair:" + login + "|"
	// The rest of a pair's key is an address, which never holds a "|": a
	// login whose name only starts with this one's and a "|" keeps its count.
	_, err := q.ExecContext(ctx, `DELETE FROM auth_failures
		WHERE key = $1 OR (starts_with(key, $2) AND strpos(substr(key, length($2) + 1), '|') = 0)`, login, pair)
	return DBError(err)
}
