package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// Synthetic identities for the data sets. IDs are valid UUIDs (version 4
// and variant bits set) built from a kind and an index, so that any row can
// be named again without keeping a table of them in memory.
func syntheticID(kind, a, b uint64) string {
	return fmt.Sprintf("%08x-%04x-4000-8000-%012x", kind, a&0xffff, b)
}

func accountUUID(a int) string { return syntheticID(0xacc0, 0, uint64(a)) }
func userUUID(i int) string    { return syntheticID(0x05e7, 0, uint64(i)) }
func keyUUID(i, k int) string  { return syntheticID(0x0c3e, uint64(k), uint64(i)) }
func syntheticLogin(i int) string {
	return fmt.Sprintf("bench%07d", i)
}

// syntheticKey is user i's k-th public key: an Ed25519 key whose 32 bytes
// are a hash of (i, k). Nothing signs with it; the directory only compares
// keys, so no private half is needed, and 3 million of them cost seconds.
func syntheticKey(i, k int) ssh.PublicKey {
	var seed [16]byte
	binary.BigEndian.PutUint64(seed[:], uint64(i))
	binary.BigEndian.PutUint64(seed[8:], uint64(k))
	sum := sha256.Sum256(seed[:])
	pk, err := ssh.NewPublicKey(ed25519.PublicKey(sum[:]))
	if err != nil {
		panic(err) // an ed25519.PublicKey of the right length always converts
	}
	return pk
}

// loadDirectory bulk-loads users users in accounts of perAccount users each,
// every one with SFTP on, credentials and keysPerUser SSH keys, in an
// account whose SFTP module is active.
func loadDirectory(ctx context.Context, db *benchDatabase, users, perAccount, keysPerUser int, log func(string, ...any)) error {
	accounts := (users + perAccount - 1) / perAccount
	steps := []struct {
		table string
		cols  []string
		n     int
		row   func(i int) []any
	}{
		{"accounts", []string{"id", "name", "sftp_status", "sftp_licences"}, accounts, func(a int) []any {
			return []any{accountUUID(a), fmt.Sprintf("Bench account %d", a), "ACTIVE", perAccount}
		}},
		{"users", []string{"id", "account_id", "email", "name", "role", "sftp_enabled"}, users, func(i int) []any {
			return []any{userUUID(i), accountUUID(i / perAccount), fmt.Sprintf("user%d@bench.example", i),
				fmt.Sprintf("Bench user %d", i), "USER", true}
		}},
		{"sftp_credentials", []string{"user_id", "account_id", "login"}, users, func(i int) []any {
			return []any{userUUID(i), accountUUID(i / perAccount), syntheticLogin(i)}
		}},
		{"ssh_keys", []string{"id", "account_id", "user_id", "title", "algorithm", "bits", "fingerprint", "public_key"},
			users * keysPerUser, func(j int) []any {
				i, k := j/keysPerUser, j%keysPerUser
				pk := syntheticKey(i, k)
				return []any{keyUUID(i, k), accountUUID(i / perAccount), userUUID(i), fmt.Sprintf("key %d", k),
					pk.Type(), 256, ssh.FingerprintSHA256(pk), pk.Marshal()}
			}},
	}
	for _, s := range steps {
		start := time.Now()
		if err := copyRows(ctx, db.admin, s.table, s.cols, s.n, s.row); err != nil {
			return err
		}
		log("loaded", "table", s.table, "rows", s.n, "took", time.Since(start).Round(time.Millisecond))
	}
	_, err := db.admin.ExecContext(ctx, "VACUUM ANALYZE")
	return err
}

// authScale measures the key-login lookup, sftplogin.Directory.PublicKeyLogin,
// on a directory of AuthUsers users with AuthKeysPerUser keys each: the
// query every public-key login runs before the SSH signature check.
func (r *runner) authScale(ctx context.Context) error {
	db, err := r.startDatabase(ctx)
	if err != nil {
		return err
	}
	users, keys := r.cfg.AuthUsers, r.cfg.AuthKeysPerUser
	start := time.Now()
	if err := loadDirectory(ctx, db, users, 100, keys, func(msg string, args ...any) { r.log.Info(msg, args...) }); err != nil {
		return err
	}
	loadTime := time.Since(start)

	tdb, err := tenant.Open(ctx, db.url)
	if err != nil {
		return err
	}
	defer tdb.Close()
	dir := sftplogin.NewDirectory(tdb)
	lookup := func(rng *rand.Rand, known bool) (time.Duration, error) {
		i, k := rng.IntN(users), rng.IntN(keys)
		key := syntheticKey(i, k)
		login := syntheticLogin(i)
		if !known {
			key = syntheticKey(i, keys) // not one of the user's keys
		}
		t0 := time.Now()
		l, err := dir.PublicKeyLogin(ctx, netip.Addr{}, netip.Addr{}, login, key)
		d := time.Since(t0)
		switch {
		case known && err != nil:
			return d, fmt.Errorf("lookup of user %d key %d: %w", i, k, err)
		case known && l.UserID != userUUID(i):
			return d, fmt.Errorf("lookup of user %d resolved to %s", i, l.UserID)
		case !known && err == nil:
			return d, fmt.Errorf("an unknown key of user %d logged in", i)
		}
		return d, nil
	}
	n := r.cfg.AuthLookups
	// Warm the connection pool and the caches a running server has warm.
	rng := rand.New(rand.NewPCG(1, 2))
	for range min(n/10, 200) {
		if _, err := lookup(rng, true); err != nil {
			return err
		}
	}
	sec := r.report.section(fmt.Sprintf("Key-login lookup at scale: %d users, %d keys, %d accounts (sftplogin.Directory.PublicKeyLogin on PostgreSQL)",
		users, users*keys, (users+99)/100),
		"case", "lookups", "p50", "p99", "max", "lookups/s")
	for _, c := range []struct {
		name    string
		workers int
		known   bool
	}{
		{"registered key, 1 client", 1, true},
		{"key not registered, 1 client", 1, false},
		{"registered key, 4 concurrent clients", 4, true},
	} {
		var mu sync.Mutex
		var lat []time.Duration
		var firstErr error
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := range c.workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				for range n / c.workers {
					d, err := lookup(rng, c.known)
					mu.Lock()
					lat = append(lat, d)
					if err != nil && firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(t0)
		if firstErr != nil {
			return firstErr
		}
		sec.row(c.name, fmt.Sprint(len(lat)), ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(percentile(lat, 100)),
			fmt.Sprintf("%.0f", float64(len(lat))/elapsed.Seconds()))
	}
	// The floor under every lookup: a directory-scope transaction that
	// runs no query (BEGIN, the scope's set_config, COMMIT).
	{
		var lat []time.Duration
		for range n {
			t0 := time.Now()
			if err := tdb.CrossTenant(ctx, tenant.ScopeDirectory, func(*sqlx.Tx) error { return nil }); err != nil {
				return err
			}
			lat = append(lat, time.Since(t0))
		}
		sec.row("empty directory transaction (the floor), 1 client", fmt.Sprint(len(lat)), ms(percentile(lat, 50)),
			ms(percentile(lat, 99)), ms(percentile(lat, 100)), "–")
	}
	sec.note("Data bulk-loaded with COPY in %s (accounts, users with SFTP on, credentials, keys), then VACUUM ANALYZE. "+
		"Each lookup is one transaction on the directory scope through the application role (row-level security on), "+
		"from the load generator's process to a private PostgreSQL on loopback; latency includes the round trips.",
		loadTime.Round(time.Second))
	return nil
}
