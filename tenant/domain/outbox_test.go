package domain_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/outbox"
)

// newOutboxDB opens a fresh migrated database with n accounts.
func newOutboxDB(t *testing.T, n int) (*tenant.DB, []string) {
	t.Helper()
	ctx := context.Background()
	db, err := tenant.Open(ctx, pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ids := make([]string, n)
	for i := range ids {
		err := db.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
			return tx.GetContext(ctx, &ids[i], `INSERT INTO accounts (name) VALUES ($1) RETURNING id`, "Account "+tenant.Itoa(i))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return db, ids
}

func resetEmail(to string) outbox.Email {
	return outbox.Email{To: to, Data: outbox.PasswordResetData{UserName: "Ada", Token: "secret-token", ExpiresAt: time.Now().Add(time.Hour)}}
}

func mustEnqueue(t *testing.T, db *tenant.DB, accountID string, e outbox.Email) {
	t.Helper()
	ctx := context.Background()
	if err := db.InAccount(ctx, accountID, func(tx *sqlx.Tx) error { return outbox.Enqueue(ctx, tx, accountID, e) }); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func listNotifications(t *testing.T, db *tenant.DB, accountID string, page tenant.Page) *tenant.Connection[*outbox.Notification] {
	t.Helper()
	ctx := context.Background()
	var conn *tenant.Connection[*outbox.Notification]
	err := db.InAccount(ctx, accountID, func(tx *sqlx.Tx) (err error) {
		conn, err = outbox.ListNotifications(ctx, tx, accountID, tenant.Order{}, page)
		return err
	})
	if err != nil {
		t.Fatalf("ListNotifications: %v", err)
	}
	return conn
}

// asWorker runs fn in a transaction on the worker's scope.
func asWorker(db *tenant.DB, fn func(q tenant.Queryer) error) error {
	return db.CrossTenant(context.Background(), tenant.ScopeOutbox, func(tx *sqlx.Tx) error { return fn(tx) })
}

// claimEmail claims the next email due at at, or returns nil.
func claimEmail(t *testing.T, db *tenant.DB, at time.Time, lease time.Duration) *outbox.OutboxEmail {
	t.Helper()
	var e *outbox.OutboxEmail
	err := asWorker(db, func(q tenant.Queryer) (err error) {
		e, err = outbox.ClaimEmail(context.Background(), q, at, lease)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnqueueFollowsTheTransaction(t *testing.T) {
	ctx := context.Background()
	db, acc := newOutboxDB(t, 1)
	errRollback := errors.New("the change failed")
	err := db.InAccount(ctx, acc[0], func(tx *sqlx.Tx) error {
		if err := outbox.Enqueue(ctx, tx, acc[0], resetEmail("lost@example.com")); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("err = %v", err)
	}
	mustEnqueue(t, db, acc[0], resetEmail("kept@example.com"))

	conn := listNotifications(t, db, acc[0], tenant.Page{})
	if len(conn.Items) != 1 {
		t.Fatalf("%d notifications, want only the committed one", len(conn.Items))
	}
	n := conn.Items[0]
	if n.Recipient != "kept@example.com" || n.Kind != outbox.EmailPasswordReset || n.Status != outbox.EmailPending ||
		n.Attempts != 0 || n.SentAt != nil || n.LastError != "" {
		t.Errorf("notification %+v", n)
	}
	// Nothing but the committed email is there for the worker either.
	var claimed []string
	later := time.Now().Add(time.Minute)
	for e := claimEmail(t, db, later, time.Minute); e != nil; e = claimEmail(t, db, later, time.Minute) {
		claimed = append(claimed, e.To)
	}
	if len(claimed) != 1 || claimed[0] != "kept@example.com" {
		t.Errorf("worker found %v", claimed)
	}
}

func TestEnqueueRefusesIncompleteEmails(t *testing.T) {
	ctx := context.Background()
	db, acc := newOutboxDB(t, 1)
	keyAdded := outbox.SSHKeyAddedData{UserName: "Ada", AccountName: "A", Title: "Laptop", Algorithm: "ssh-ed25519",
		Bits: 256, Fingerprint: "SHA256:x", AddedAt: time.Now(), AddedBy: "Ada"}
	noTitle := keyAdded
	noTitle.Title = " "
	sftp := outbox.SFTPEnabledData{UserName: "Ada", AccountName: "A", Host: "h", Port: 22, Login: "l",
		HostKeys: []outbox.HostKeyFingerprint{{Algorithm: "ssh-ed25519", Fingerprint: "SHA256:x"}}}
	badKey := sftp
	badKey.HostKeys = []outbox.HostKeyFingerprint{{Algorithm: "ssh-ed25519"}}
	customWithoutHost := sftp
	customWithoutHost.CustomLogin = "ada"
	tests := []struct {
		name string
		e    outbox.Email
		want string
	}{
		{"no data", outbox.Email{To: "a@example.com"}, "no data"},
		{"blank title", outbox.Email{To: "a@example.com", Data: noTitle}, "Title is required"},
		{"no time", outbox.Email{To: "a@example.com", Data: outbox.PasswordResetData{UserName: "Ada", Token: "t"}}, "ExpiresAt is required"},
		{"host key without fingerprint", outbox.Email{To: "a@example.com", Data: badKey}, "HostKeys.Fingerprint is required"},
		{"custom login without host", outbox.Email{To: "a@example.com", Data: customWithoutHost}, "DedicatedHost"},
		{"bad recipient", outbox.Email{To: "Ada <a@example.com>", Data: keyAdded}, "not a valid email address"},
		{"no recipient", outbox.Email{Data: keyAdded}, "email is required"},
	}
	for _, tt := range tests {
		err := db.InAccount(ctx, acc[0], func(tx *sqlx.Tx) error { return outbox.Enqueue(ctx, tx, acc[0], tt.e) })
		if tenant.ErrorCode(err) != tenant.EInternal || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want an internal error about %q", tt.name, err, tt.want)
		}
	}
	if n := len(listNotifications(t, db, acc[0], tenant.Page{}).Items); n != 0 {
		t.Errorf("%d emails enqueued, want none", n)
	}
	mustEnqueue(t, db, acc[0], outbox.Email{To: "a@example.com", Data: keyAdded})
	mustEnqueue(t, db, acc[0], outbox.Email{To: "a@example.com", Data: sftp})
}

func TestOutboxIsolatesTenants(t *testing.T) {
	ctx := context.Background()
	db, acc := newOutboxDB(t, 2)
	mustEnqueue(t, db, acc[0], resetEmail("a@example.com"))

	// Another tenant sees nothing, even asking for the first tenant's rows.
	if n := len(listNotifications(t, db, acc[1], tenant.Page{}).Items); n != 0 {
		t.Errorf("account 2 lists %d of its own, want 0", n)
	}
	var leaked int
	err := db.InAccount(ctx, acc[1], func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &leaked, `SELECT count(*) FROM outbox`)
	})
	if err != nil || leaked != 0 {
		t.Errorf("account 2 counts %d outbox rows (%v), want 0", leaked, err)
	}
	// An account cannot enqueue into another's outbox...
	err = db.InAccount(ctx, acc[1], func(tx *sqlx.Tx) error { return outbox.Enqueue(ctx, tx, acc[0], resetEmail("x@example.com")) })
	if err == nil {
		t.Error("account 2 wrote into account 1's outbox")
	}
	// ...nor mark its own email as sent: only the worker records delivery.
	err = db.InAccount(ctx, acc[0], func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'FAILED'`)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if n != 0 {
			t.Errorf("a tenant updated %d outbox rows", n)
		}
		return nil
	})
	if err != nil {
		t.Logf("tenant update refused: %v", err)
	}
	if n := listNotifications(t, db, acc[0], tenant.Page{}).Items[0]; n.Status != outbox.EmailPending {
		t.Errorf("status %s after a tenant's update, want PENDING", n.Status)
	}
}

func TestListNotificationsPages(t *testing.T) {
	db, acc := newOutboxDB(t, 1)
	for _, to := range []string{"first@example.com", "second@example.com", "third@example.com"} {
		mustEnqueue(t, db, acc[0], resetEmail(to))
	}
	page1 := listNotifications(t, db, acc[0], tenant.Page{First: 2})
	if len(page1.Items) != 2 || !page1.HasNext || page1.HasPrevious ||
		page1.Items[0].Recipient != "third@example.com" || page1.Items[1].Recipient != "second@example.com" {
		t.Fatalf("page 1: %+v %+v", page1, page1.Items)
	}
	page2 := listNotifications(t, db, acc[0], tenant.Page{First: 2, After: page1.Cursors[1]})
	if len(page2.Items) != 1 || page2.HasNext || !page2.HasPrevious || page2.Items[0].Recipient != "first@example.com" {
		t.Fatalf("page 2: %+v", page2)
	}

	ctx := context.Background()
	for _, p := range []tenant.Page{{After: "garbage"}, {After: tenant.EncodeCursor("yesterday", page1.Items[0].ID)}, {First: tenant.MaxPageSize + 1}} {
		err := db.InAccount(ctx, acc[0], func(tx *sqlx.Tx) error {
			_, err := outbox.ListNotifications(ctx, tx, acc[0], tenant.Order{}, p)
			return err
		})
		if tenant.ErrorCode(err) != tenant.EInvalid {
			t.Errorf("page %+v: err = %v, want INVALID", p, err)
		}
	}
}

func TestNotificationsPermissions(t *testing.T) {
	db, acc := newOutboxDB(t, 2)
	mustEnqueue(t, db, acc[0], resetEmail("a@example.com"))
	s := domain.New(db)
	as := func(p *tenant.Principal) context.Context { return tenant.WithPrincipal(context.Background(), p) }
	admin := &tenant.Principal{Kind: tenant.KindUser, ID: "00000000-0000-0000-0000-000000000001", AccountID: acc[0], Role: tenant.RoleAdmin}
	user := &tenant.Principal{Kind: tenant.KindUser, ID: "00000000-0000-0000-0000-000000000002", AccountID: acc[0], Role: tenant.RoleUser}
	otherAdmin := &tenant.Principal{Kind: tenant.KindUser, ID: "00000000-0000-0000-0000-000000000003", AccountID: acc[1], Role: tenant.RoleOwner}
	staff := &tenant.Principal{Kind: tenant.KindStaff, ID: "00000000-0000-0000-0000-000000000004"}

	for _, p := range []*tenant.Principal{admin, staff} {
		conn, err := s.Outbox.Notifications(as(p), acc[0], tenant.Order{}, tenant.Page{})
		if err != nil || len(conn.Items) != 1 {
			t.Errorf("%s %s: %v, %+v", p.Kind, p.Role, err, conn)
		}
	}
	if _, err := s.Outbox.Notifications(as(user), acc[0], tenant.Order{}, tenant.Page{}); tenant.ErrorCode(err) != tenant.EForbidden {
		t.Errorf("plain user: err = %v, want FORBIDDEN", err)
	}
	if _, err := s.Outbox.Notifications(as(otherAdmin), acc[0], tenant.Order{}, tenant.Page{}); tenant.ErrorCode(err) != tenant.ENotFound {
		t.Errorf("another account's owner: err = %v, want NOT_FOUND", err)
	}
	if _, err := s.Outbox.Notifications(context.Background(), acc[0], tenant.Order{}, tenant.Page{}); tenant.ErrorCode(err) != tenant.EUnauthenticated {
		t.Errorf("anonymous: err = %v, want UNAUTHENTICATED", err)
	}
	if _, err := s.Outbox.Notifications(as(staff), "not-a-uuid", tenant.Order{}, tenant.Page{}); tenant.ErrorCode(err) != tenant.ENotFound {
		t.Errorf("staff, bad account ID: err = %v, want NOT_FOUND", err)
	}
}

func TestClaimAndRecordDelivery(t *testing.T) {
	ctx := context.Background()
	db, acc := newOutboxDB(t, 1)
	mustEnqueue(t, db, acc[0], resetEmail("a@example.com"))
	now := time.Now().Add(time.Second)
	claim := func(at time.Time) *outbox.OutboxEmail { return claimEmail(t, db, at, 10*time.Minute) }

	first := claim(now)
	if first == nil || first.Attempts != 1 || first.Unfinished || first.AccountID != acc[0] || first.Kind != outbox.EmailPasswordReset {
		t.Fatalf("first claim: %+v", first)
	}
	var data outbox.PasswordResetData
	if err := json.Unmarshal(first.Data, &data); err != nil || data.Token != "secret-token" {
		t.Errorf("claimed data %s lacks the token", first.Data)
	}
	if again := claim(now.Add(9 * time.Minute)); again != nil {
		t.Fatalf("claimed twice within the lease: %+v", again)
	}
	// The first worker vanished; after the lease another takes over...
	second := claim(now.Add(11 * time.Minute))
	if second == nil || second.ID != first.ID || second.Attempts != 2 || !second.Unfinished {
		t.Fatalf("claim after the lease: %+v", second)
	}
	// ...and the first worker, back from the dead, may not record anything.
	err := asWorker(db, func(q tenant.Queryer) error { return outbox.MarkEmailSent(ctx, q, first, now, "late", "x@skiff") })
	if !errors.Is(err, outbox.ErrClaimLost) {
		t.Errorf("stale claim recorded: %v", err)
	}
	err = asWorker(db, func(q tenant.Queryer) error {
		return outbox.MarkEmailSent(ctx, q, second, now, "Reset your password", "id@skiff")
	})
	if err != nil {
		t.Fatal(err)
	}
	n := listNotifications(t, db, acc[0], tenant.Page{}).Items[0]
	if n.Status != outbox.EmailSent || n.Attempts != 2 || n.SentAt == nil || n.SentAt.Sub(now).Abs() > time.Microsecond ||
		n.Subject != "Reset your password" {
		t.Errorf("after sending: %+v", n)
	}
	var stored string
	err = db.CrossTenant(ctx, tenant.ScopeOutbox, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &stored, `SELECT data::text FROM outbox WHERE id = $1`, second.ID)
	})
	if err != nil || strings.Contains(stored, "secret-token") {
		t.Errorf("the one-time token outlives the email: %s (%v)", stored, err)
	}
	if e := claim(now.Add(24 * time.Hour)); e != nil {
		t.Errorf("a sent email was claimed again: %+v", e)
	}
}

func TestRecordFailure(t *testing.T) {
	ctx := context.Background()
	db, acc := newOutboxDB(t, 1)
	mustEnqueue(t, db, acc[0], resetEmail("a@example.com"))
	now := time.Now().Add(time.Second)
	fail := func(e *outbox.OutboxEmail, reason string, retryAt time.Time) {
		t.Helper()
		if err := asWorker(db, func(q tenant.Queryer) error {
			return outbox.MarkEmailFailed(ctx, q, e, reason, retryAt, "Subject", "id@skiff")
		}); err != nil {
			t.Fatal(err)
		}
	}

	fail(claimEmail(t, db, now, time.Minute), strings.Repeat("é", 2000), now.Add(time.Hour))
	n := listNotifications(t, db, acc[0], tenant.Page{}).Items[0]
	if n.Status != outbox.EmailPending || n.Attempts != 1 || len([]rune(n.LastError)) != outbox.MaxErrorLen {
		t.Errorf("after a failure: status %s attempts %d error of %d characters", n.Status, n.Attempts, len([]rune(n.LastError)))
	}
	if e := claimEmail(t, db, now.Add(59*time.Minute), time.Minute); e != nil {
		t.Fatal("claimed before its retry time")
	}
	e := claimEmail(t, db, now.Add(time.Hour), time.Minute)
	if e == nil || e.Unfinished || e.Attempts != 2 {
		t.Fatalf("retry claim: %+v", e)
	}
	fail(e, "refused", time.Time{})
	n = listNotifications(t, db, acc[0], tenant.Page{}).Items[0]
	if n.Status != outbox.EmailFailed || n.LastError != "refused" || n.Attempts != 2 {
		t.Errorf("after giving up: %+v", n)
	}
	if e := claimEmail(t, db, now.Add(48*time.Hour), time.Minute); e != nil {
		t.Error("a failed email was claimed again")
	}
}
