package domain_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/activity"
	"github.com/skiffhq/skiff/tenant/domain"
)

// TestActivityQueryAtScale measures the activity query the issue names:
// one user's 30 days, newest first, a page of 50, on an account with 10
// million events (SKIFF_BENCH_ACTIVITY_EVENTS to change), seeded with
// generate_series: 200 users, 90 days, events spread evenly over users and
// time. It prints the plan (EXPLAIN ANALYZE), the statement's execution
// time on the server for 100 random users and 30-day windows, and the
// p50/p99 of 600 calls of activity.Service.UserEvents (its scoped
// transaction included): 400 first pages and 200 next pages.
// It takes minutes and gigabytes, so it runs only when asked:
//
//	SKIFF_BENCH_ACTIVITY=1 go test -run ActivityQueryAtScale -v -timeout 60m ./tenant/domain
func TestActivityQueryAtScale(t *testing.T) {
	if os.Getenv("SKIFF_BENCH_ACTIVITY") == "" {
		t.Skip("a benchmark: set SKIFF_BENCH_ACTIVITY=1 to run it")
	}
	events := 10_000_000
	if v := os.Getenv("SKIFF_BENCH_ACTIVITY_EVENTS"); v != "" {
		events, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	_, db, svc, a, owner := busyAccount(t)
	const users = 200
	userIDs := make([]string, users)
	for i := range userIDs {
		userIDs[i] = "00000000-0000-4000-8000-" + strings.Repeat("0", 12-len(strconv.Itoa(i))) + strconv.Itoa(i)
	}
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	span := 90 * 24 * time.Hour
	start := time.Now()
	err := db.CrossTenant(ctx, tenant.ScopeActivity, func(tx *sqlx.Tx) error {
		// Event i: user i % 200, at evenly spaced times over 90 days.
		_, err := tx.ExecContext(ctx, `INSERT INTO sftp_activity (account_id, at, user_id, login, action, outcome, path,
				bytes, duration_ms, client_addr, node, session_id)
			SELECT $1, $2::timestamptz - (i * $3::float8) * interval '1 microsecond',
				($4::uuid[])[1 + i % 200], 'user-' || (i % 200),
				(ARRAY['UPLOAD','DOWNLOAD','LOGIN','LOGOUT','DELETE','RENAME','MKDIR'])[1 + i % 7], 'SUCCESS',
				'/My Files/project-' || (i % 50) || '/file-' || i || '.dat', i % 100000, i % 5000, '198.51.100.' || (i % 250),
				'node-' || (i % 3), md5(i::text)
			FROM generate_series(0, $5 - 1) AS i`,
			a.ID, end, float64(span.Microseconds())/float64(events), tenant.UUIDArray(userIDs), events)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	seeded := time.Since(start)
	var size string
	if err := db.X.GetContext(ctx, &size, `SELECT pg_size_pretty(pg_total_relation_size('sftp_activity'))`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.X.ExecContext(ctx, `ANALYZE sftp_activity`); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d events in %v; table with indexes: %s", events, seeded.Round(time.Second), size)

	// The plan of a first page for one user's 30 days.
	from, to := end.Add(-40*24*time.Hour), end.Add(-10*24*time.Hour)
	var plan []string
	err = db.InAccount(ctx, a.ID, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &plan, `EXPLAIN (ANALYZE, BUFFERS) SELECT id, at, action, path FROM sftp_activity
			WHERE account_id = $1 AND user_id = $2 AND at >= $3 AND at < $4 ORDER BY at DESC, id DESC LIMIT 51`,
			a.ID, userIDs[7], from, to)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EXPLAIN ANALYZE, one user's 30 days, first page:\n%s", strings.Join(plan, "\n"))

	ownerCtx := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindUser, ID: owner.ID, AccountID: a.ID, Role: owner.Role})
	var took, exec []time.Duration
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		from := end.Add(-time.Duration(rng.Int64N(int64(span-30*24*time.Hour))) - 30*24*time.Hour)
		to := from.Add(30 * 24 * time.Hour)
		f := activity.Filter{UserID: userIDs[rng.IntN(users)], From: &from, To: &to}
		q := time.Now()
		c, err := svc.Activity.UserEvents(ownerCtx, a.ID, f.UserID, f, tenant.Order{}, tenant.Page{First: 50})
		took = append(took, time.Since(q))
		if err != nil || len(c.Items) != 50 {
			t.Fatalf("query %d: %d events, %v", i, len(c.Items), err)
		}
		if i%2 == 1 { // and the next page
			q := time.Now()
			if _, err := svc.Activity.UserEvents(ownerCtx, a.ID, f.UserID, f, tenant.Order{}, tenant.Page{First: 50, After: c.Cursors[49]}); err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(q))
		}
		if i%4 == 0 { // the server's own time for the same statement
			var plan []string
			err := db.InAccount(ctx, a.ID, func(tx *sqlx.Tx) error {
				return tx.SelectContext(ctx, &plan, `EXPLAIN (ANALYZE, FORMAT TEXT) SELECT id, account_id, at, user_id, login, action,
					outcome, path, target_path, bytes, duration_ms, reason, client_addr, node, session_id, folder_id, folder_path
					FROM sftp_activity WHERE account_id = $1 AND user_id = $2 AND at >= $3 AND at < $4 ORDER BY at DESC, id DESC LIMIT 51`,
					a.ID, f.UserID, from, to)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range plan {
				if v, ok := strings.CutPrefix(l, "Execution Time: "); ok {
					ms, _ := strconv.ParseFloat(strings.TrimSuffix(v, " ms"), 64)
					exec = append(exec, time.Duration(ms*float64(time.Millisecond)))
				}
			}
		}
	}
	slices.Sort(exec)
	t.Logf("the statement's execution time on the server (EXPLAIN ANALYZE), %d random users and windows: p50 %v, p99 %v, max %v",
		len(exec), exec[len(exec)/2], exec[len(exec)*99/100], exec[len(exec)-1])
	slices.Sort(took)
	t.Logf("UserEvents (its transaction included), one user's 30 days, a page of 50, %d calls (first and next pages): p50 %v, p90 %v, p99 %v, max %v",
		len(took), took[len(took)/2], took[len(took)*9/10], took[len(took)*99/100], took[len(took)-1])
	if p99 := took[len(took)*99/100]; p99 > 50*time.Millisecond {
		t.Errorf("p99 %v > 50 ms", p99)
	}
}

// TestActivityCostNotifyTrigger measures what the sftpActivity
// subscriptions' notification (migration 00130: one pg_notify per account
// and node per batch) costs the recorder's batches, in one run on one
// database: 12 rounds of 20,000 upload events written in full batches of
// 1,000, the trigger enabled and disabled in turn, with a node listening.
//
//	SKIFF_BENCH_ACTIVITY=1 go test -run ActivityCostNotifyTrigger -v ./tenant/domain
func TestActivityCostNotifyTrigger(t *testing.T) {
	if os.Getenv("SKIFF_BENCH_ACTIVITY") == "" {
		t.Skip("a benchmark: set SKIFF_BENCH_ACTIVITY=1 to run it")
	}
	ctx := context.Background()
	url, db, svc, a, owner := busyAccount(t)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go svc.Activity.Live.Listen(lctx, url, nil) //nolint:errcheck // ends with the test
	const perRound, rounds = 20_000, 12
	rec := activity.NewRecorder(db, activity.RecorderConfig{Node: "node-b", BatchSize: 1000, QueueSize: perRound, FlushEvery: time.Hour})
	rec.Start()
	defer rec.Close(ctx) //nolint:errcheck
	rate := map[bool][]float64{}
	for r := range rounds {
		on := r%2 == 0
		toggle := "DISABLE"
		if on {
			toggle = "ENABLE"
		}
		if _, err := db.X.ExecContext(ctx, `ALTER TABLE sftp_activity `+toggle+` TRIGGER sftp_activity_recorded`); err != nil {
			t.Fatal(err)
		}
		before := rec.Stats().Recorded
		start := time.Now()
		for i := range perRound {
			ev := activity.Event{AccountID: a.ID, UserID: owner.ID, Login: "olive", Action: activity.ActionUpload,
				Outcome: activity.Succeeded, Path: "/My Files/f-" + strconv.Itoa(i) + ".dat", ClientAddr: "198.51.100.7"}
			ev.SetBytes(1024)
			rec.Record(ev)
		}
		for rec.Stats().Recorded < before+perRound {
			time.Sleep(time.Millisecond)
		}
		rate[on] = append(rate[on], perRound/time.Since(start).Seconds())
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	on, off := med(rate[true]), med(rate[false])
	t.Logf("events written per second, median of %d rounds: trigger on %.0f, off %.0f (on/off %.3f); on %v off %v",
		rounds/2, on, off, on/off, rate[true], rate[false])
}

// busyAccount is a migrated database (its URL and store), its services and
// one account with its owner, for the benchmarks above.
func busyAccount(t *testing.T) (string, *tenant.DB, *domain.Domain, *tenant.Account, *tenant.User) {
	t.Helper()
	url := pgtest.NewDB(t)
	db, err := tenant.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := domain.New(db)
	a, owner, err := svc.Accounts.CreateAccount(tenant.SystemContext(context.Background()), account.CreateAccountInput{
		Name: "Busy", OwnerEmail: "owner@busy.example", OwnerName: "Olive", OwnerPassword: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	return url, db, svc, a, owner
}
