package policy

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
)

// bigAccount writes an account with shares folder shares straight into a
// fresh database: 200 users (one in ten an administrator), shares/10
// folders, each shared with ten users at presets in turn and every fifth
// one also with a group. It returns the database URL, the account and one
// user with shares.
func bigAccount(t testing.TB, shares int) (url, account, user string) {
	t.Helper()
	url = pgtest.NewDB(t)
	_, q := rawDB(t, url)
	account = q(`INSERT INTO accounts (name) VALUES ('Big') RETURNING id`)
	q(`INSERT INTO users (account_id, email, name, role)
		SELECT $1, 'u' || i || '@big.example', 'u' || i, CASE WHEN i % 10 = 0 THEN 'ADMIN' ELSE 'USER' END
		FROM generate_series(1, 200) i`, account)
	user = q(`SELECT id FROM users WHERE account_id = $1 AND role = 'USER' ORDER BY id LIMIT 1`, account)
	folders := shares / 10
	q(`INSERT INTO project_folders (account_id, name, created_by)
		SELECT $1, 'f' || i, $2 FROM generate_series(1, $3::int) i`, account, user, folders)
	// Folder k (in order of ID) goes to users k..k+9 (mod 200).
	q(`WITH f AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM project_folders WHERE account_id = $1),
		u AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users WHERE account_id = $1)
		INSERT INTO folder_shares (account_id, folder_id, user_id, preset)
		SELECT $1, f.id, u.id, (ARRAY['LIST','READ','WRITE','SHARE','OWNER'])[1 + (f.k + j) % 5]
		FROM f, generate_series(0, 9) j, u WHERE u.n = (f.k + j) % 200`, account)
	q(`WITH f AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM project_folders WHERE account_id = $1)
		INSERT INTO folder_shares (account_id, folder_id, group_id, preset)
		SELECT $1, f.id, (SELECT id FROM groups WHERE account_id = $1 AND builtin = 'ASSOCIATE'), 'READ'
		FROM f WHERE f.k % 5 = 0`, account)
	if n, _ := strconv.Atoi(q(`SELECT count(*) FROM folder_shares WHERE account_id = $1`, account)); n < shares {
		t.Fatalf("%d shares, want at least %d", n, shares)
	}
	return url, account, user
}

// rawDB opens url as the connection role, closed when the test ends, and
// returns a function that runs a statement and returns the one value of
// its row ("" for none), failing the test on an error.
func rawDB(t testing.TB, url string) (*sql.DB, func(query string, args ...any) string) {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, func(query string, args ...any) string {
		t.Helper()
		var out sql.NullString
		if err := db.QueryRow(query, args...).Scan(&out); err != nil && err != sql.ErrNoRows {
			t.Fatalf("%s: %v", query, err)
		}
		return out.String
	}
}

// TestMeasureLoad measures one account's load (Invalidate, then a decision)
// at the share counts in SKIFF_POLICY_LOAD_SHARES (say "20000,200000"),
// SKIFF_POLICY_LOAD_ROUNDS times each (5); skipped without them.
// SKIFF_POLICY_LOAD_PROFILE names a folder for CPU and allocation profiles
// of each count's first round. Peak heap is sampled every millisecond, so
// it includes garbage not yet collected; held is the heap after a GC with
// the account loaded. See docs/BENCHMARKS.md.
func TestMeasureLoad(t *testing.T) {
	env := os.Getenv("SKIFF_POLICY_LOAD_SHARES")
	if env == "" {
		t.Skip("set SKIFF_POLICY_LOAD_SHARES to measure")
	}
	rounds := 5
	if s := os.Getenv("SKIFF_POLICY_LOAD_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	for _, s := range splitComma(env) {
		shares, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		url, account, user := bigAccount(t, shares)
		db, err := tenant.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(db, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base) // before the account is held
		load := func() {
			e.Invalidate(account)
			if _, err := e.May(ctx, user, account, AccountObject, string(SFTPMyFiles)); err != nil {
				t.Fatal(err)
			}
		}
		load() // warm the connection
		var times, allocs, peaks, lives []float64
		for range rounds {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			stop := samplePeak()
			start := time.Now()
			if prof := os.Getenv("SKIFF_POLICY_LOAD_PROFILE"); prof != "" && len(times) == 0 {
				f, err := os.Create(filepath.Join(prof, "cpu-"+s+".pprof"))
				if err != nil {
					t.Fatal(err)
				}
				pprof.StartCPUProfile(f)
				load()
				pprof.StopCPUProfile()
				f.Close()
				runtime.GC()
				m, err := os.Create(filepath.Join(prof, "mem-"+s+".pprof"))
				if err != nil {
					t.Fatal(err)
				}
				pprof.Lookup("allocs").WriteTo(m, 0)
				m.Close()
			} else {
				load()
			}
			took := time.Since(start)
			peak := stop()
			runtime.ReadMemStats(&after)
			runtime.GC()
			var live runtime.MemStats
			runtime.ReadMemStats(&live)
			times = append(times, float64(took.Milliseconds()))
			allocs = append(allocs, float64(after.TotalAlloc-before.TotalAlloc)/1e6)
			peaks = append(peaks, float64(peak-base.HeapAlloc)/1e6)
			lives = append(lives, float64(live.HeapAlloc-base.HeapAlloc)/1e6)
		}
		t.Logf("shares=%d rounds=%d: load ms %v, median %.0f; allocated MB median %.1f; peak heap MB median %.1f; held after GC MB median %.1f (heap above the enforcer's start)",
			shares, rounds, times, median(times), median(allocs), median(peaks), median(lives))
		db.Close()
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// samplePeak samples the heap's object bytes every millisecond until the
// function it returns is called, which returns the largest sample.
func samplePeak() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}
