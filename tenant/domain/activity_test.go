package domain_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/activity"
)

// activityAt is an event of u at t with path p.
func activityAt(u *tenant.User, t time.Time, action activity.Action, p string) activity.Event {
	return activity.Event{AccountID: u.AccountID, UserID: u.ID, At: t, Login: "login-" + u.Name, Action: action,
		Outcome: activity.Succeeded, Path: p, ClientAddr: "192.0.2.1"}
}

// record writes events through a recorder and waits until they are written.
func (w *world) record(events ...activity.Event) {
	w.t.Helper()
	rec := activity.NewRecorder(w.svc.DB, activity.RecorderConfig{Node: "node-t"})
	rec.Start()
	for _, ev := range events {
		rec.Record(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		w.t.Fatal(err)
	}
	if st := rec.Stats(); st.Recorded != int64(len(events)) || st.Spilled != 0 {
		w.t.Fatalf("recorder: %+v", st)
	}
}

func paths(c *tenant.Connection[*activity.Event]) []string {
	var out []string
	for _, e := range c.Items {
		out = append(out, e.Path)
	}
	return out
}

// Another account's administrators cannot see the log, not even by a
// query without a filter (row-level security).
func TestActivityLogIsTenantIsolated(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w.record(activityAt(w.owner, t0, activity.ActionUpload, "/My Files/secret.pdf"))
	other, otherOwner, err := w.svc.Accounts.CreateAccount(tenant.SystemContext(context.Background()), account.CreateAccountInput{
		Name: "Rival", OwnerEmail: "owner@rival.example", OwnerName: "Rita", OwnerPassword: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := w.svc.Activity.AccountEvents(w.as(w.owner), w.account.ID, activity.Filter{}, tenant.Order{}, tenant.Page{}); err != nil || len(c.Items) != 1 {
		t.Fatalf("the owner's own log: %v, %v", c, err)
	}
	_, err = w.svc.Activity.AccountEvents(w.as(otherOwner), w.account.ID, activity.Filter{}, tenant.Order{}, tenant.Page{})
	wantCode(t, "another account's owner", err, tenant.ENotFound, "")
	_, err = w.svc.Activity.UserEvents(w.as(otherOwner), w.account.ID, w.owner.ID, activity.Filter{}, tenant.Order{}, tenant.Page{})
	wantCode(t, "another account's owner, by user", err, tenant.ENotFound, "")
	var n int
	err = w.svc.DB.InAccount(context.Background(), other.ID, func(tx *sqlx.Tx) error {
		return tx.GetContext(context.Background(), &n, `SELECT count(*) FROM sftp_activity`)
	})
	if err != nil || n != 0 {
		t.Errorf("another account's transaction sees %d events (%v)", n, err)
	}
	// Tenants cannot write events either: only the recorder's scope can.
	err = w.svc.DB.InAccount(context.Background(), w.account.ID, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO sftp_activity (account_id, at, user_id, login, action, outcome)
			VALUES ($1, now(), $2, 'x', 'LOGIN', 'SUCCESS')`, w.account.ID, w.owner.ID)
		return err
	})
	if err == nil {
		t.Error("a tenant transaction wrote an activity event")
	}
}

// A plain user sees their own activity only.
func TestActivityLogUserSeesOwnOnly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	uma, ivo := w.user("Uma", tenant.RoleUser), w.user("Ivo", tenant.RoleUser)
	admin := w.user("Ada", tenant.RoleAdmin)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w.record(activityAt(uma, t0, activity.ActionUpload, "/My Files/uma.txt"),
		activityAt(ivo, t0.Add(time.Second), activity.ActionUpload, "/My Files/ivo.txt"))

	_, err := w.svc.Activity.AccountEvents(w.as(uma), w.account.ID, activity.Filter{}, tenant.Order{}, tenant.Page{})
	wantCode(t, "a user reading the account's log", err, tenant.EForbidden, "")
	_, err = w.svc.Activity.UserEvents(w.as(uma), w.account.ID, ivo.ID, activity.Filter{}, tenant.Order{}, tenant.Page{})
	wantCode(t, "a user reading another's activity", err, tenant.ENotFound, "")
	c, err := w.svc.Activity.UserEvents(w.as(uma), w.account.ID, uma.ID, activity.Filter{}, tenant.Order{}, tenant.Page{})
	if err != nil || !slices.Equal(paths(c), []string{"/My Files/uma.txt"}) {
		t.Errorf("a user's own activity: %v, %v", paths(c), err)
	}
	// A user cannot widen their own listing with a filter.
	c, err = w.svc.Activity.UserEvents(w.as(uma), w.account.ID, uma.ID, activity.Filter{UserID: ivo.ID}, tenant.Order{}, tenant.Page{})
	if err != nil || !slices.Equal(paths(c), []string{"/My Files/uma.txt"}) {
		t.Errorf("a user's own activity, filtered on another: %v, %v", paths(c), err)
	}
	c, err = w.svc.Activity.AccountEvents(w.as(admin), w.account.ID, activity.Filter{}, tenant.Order{}, tenant.Page{})
	if err != nil || !slices.Equal(paths(c), []string{"/My Files/ivo.txt", "/My Files/uma.txt"}) {
		t.Errorf("an administrator's view: %v, %v", paths(c), err)
	}
}

// The filters narrow the list and the pages walk it without gaps or repeats.
func TestActivityLogFiltersAndPages(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	uma := w.user("Uma", tenant.RoleUser)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var events []activity.Event
	for i, p := range []string{"/My Files/a/1", "/My Files/a/2", "/My Files/b/3", "/My Files/a%/4", "/My Files/a/5"} {
		events = append(events, activityAt(uma, t0.Add(time.Duration(i)*time.Hour), activity.ActionUpload, p))
	}
	mv := activityAt(w.owner, t0.Add(10*time.Hour), activity.ActionRename, "/My Files/x")
	mv.TargetPath = "/My Files/a/renamed"
	events = append(events, mv, activityAt(uma, t0.Add(11*time.Hour), activity.ActionDownload, "/My Files/a/1"))
	w.record(events...)
	ctx := w.as(w.owner)
	list := func(f activity.Filter) []string {
		t.Helper()
		c, err := w.svc.Activity.AccountEvents(ctx, w.account.ID, f, tenant.Order{}, tenant.Page{First: 50})
		if err != nil {
			t.Fatal(err)
		}
		return paths(c)
	}
	from, to := t0.Add(time.Hour), t0.Add(4*time.Hour)
	for _, tc := range []struct {
		name string
		f    activity.Filter
		want []string
	}{
		{"prefix", activity.Filter{PathPrefix: "/My Files/a/"}, []string{"/My Files/a/1", "/My Files/x", "/My Files/a/5", "/My Files/a/2", "/My Files/a/1"}},
		{"prefix with %", activity.Filter{PathPrefix: "/My Files/a%"}, []string{"/My Files/a%/4"}},
		{"user and action", activity.Filter{UserID: uma.ID, Actions: []activity.Action{activity.ActionDownload}}, []string{"/My Files/a/1"}},
		{"time range", activity.Filter{From: &from, To: &to}, []string{"/My Files/a%/4", "/My Files/b/3", "/My Files/a/2"}},
		{"another user", activity.Filter{UserID: w.owner.ID}, []string{"/My Files/x"}},
		{"a user ID that is not one", activity.Filter{UserID: "nobody"}, nil},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	_, err := w.svc.Activity.AccountEvents(ctx, w.account.ID, activity.Filter{From: &to, To: &from}, tenant.Order{}, tenant.Page{})
	wantCode(t, "from after to", err, tenant.EInvalid, "to")
	_, err = w.svc.Activity.AccountEvents(ctx, w.account.ID, activity.Filter{Actions: []activity.Action{"HACK"}}, tenant.Order{}, tenant.Page{})
	wantCode(t, "an unknown action", err, tenant.EInvalid, "actions")

	var walked []string
	after := ""
	for range 10 {
		c, err := w.svc.Activity.AccountEvents(ctx, w.account.ID, activity.Filter{}, tenant.Order{}, tenant.Page{First: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		walked = append(walked, paths(c)...)
		if !c.HasNext {
			break
		}
		after = c.Cursors[len(c.Cursors)-1]
	}
	if len(walked) != len(events) || walked[0] != "/My Files/a/1" || walked[len(walked)-1] != "/My Files/a/1" || walked[1] != "/My Files/x" {
		t.Errorf("pages of 2 walked %v", walked)
	}
	_, err = w.svc.Activity.AccountEvents(ctx, w.account.ID, activity.Filter{}, tenant.Order{}, tenant.Page{After: "bad"})
	wantCode(t, "a bad cursor", err, tenant.EInvalid, "after")
}

// The retention purge deletes what is older than the cut, in batches, and
// nothing newer.
func TestActivityRetentionPurge(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var events []activity.Event
	for i := range 7 {
		events = append(events, activityAt(w.owner, cut.Add(-time.Duration(i+1)*time.Hour), activity.ActionUpload, "/My Files/old"))
	}
	events = append(events, activityAt(w.owner, cut, activity.ActionUpload, "/My Files/new"),
		activityAt(w.owner, cut.Add(time.Hour), activity.ActionUpload, "/My Files/new"))
	w.record(events...)
	n, err := w.svc.Activity.Purge(context.Background(), cut, 3)
	if err != nil || n != 7 {
		t.Fatalf("Purge: %d deleted, %v; want 7", n, err)
	}
	c, err := w.svc.Activity.AccountEvents(w.as(w.owner), w.account.ID, activity.Filter{}, tenant.Order{}, tenant.Page{})
	if err != nil || !slices.Equal(paths(c), []string{"/My Files/new", "/My Files/new"}) {
		t.Errorf("after the purge: %v, %v", paths(c), err)
	}
}

// With the database unreachable, a full queue costs Record one short wait,
// then events go to the log with their fields: never silently dropped.
func TestActivityRecorderSpillsWhenFull(t *testing.T) {
	t.Parallel()
	x, err := sqlx.Open("postgres", "postgres://skiff@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	logs := &testkit.SyncBuffer{}
	rec := activity.NewRecorder(tenant.NewDB(x), activity.RecorderConfig{Node: "n", QueueSize: 2, BatchSize: 2,
		FlushEvery: time.Hour, FullWait: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	rec.Start()
	u := &tenant.User{ID: "00000000-0000-4000-8000-000000000001", AccountID: "00000000-0000-4000-8000-000000000002", Name: "u"}
	start := time.Now()
	for i := range 20 {
		rec.Record(activityAt(u, time.Now(), activity.ActionUpload, "/My Files/f"+strings.Repeat("x", i)))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20 Records took %v with the queue full", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	rec.Close(ctx)
	testkit.Eventually(t, "every event spilled", func() bool { return rec.Stats().Spilled == 20 })
	if got := strings.Count(logs.String(), `msg="sftp activity not recorded"`); got != 20 {
		t.Errorf("%d events in the log, want 20:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), `path="/My Files/fxxx"`) {
		t.Errorf("the spilled events lack their fields:\n%s", logs.String())
	}
}
