package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
)

// newOutboxDB opens a fresh migrated database with n accounts.
func newOutboxDB(t *testing.T, n int) (*DB, []string) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ids := make([]string, n)
	for i := range ids {
		err := db.CrossTenant(ctx, ScopeStaff, func(tx *sqlxTx) error {
			return tx.GetContext(ctx, &ids[i], `INSERT INTO accounts (name) VALUES ($1) RETURNING id`, "Account "+itoa(i))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return db, ids
}

func resetEmail(to string) Email {
	return Email{To: to, Data: PasswordResetData{UserName: "Ada", Token: "secret-token", ExpiresAt: time.Now().Add(time.Hour)}}
}

func mustEnqueue(t *testing.T, db *DB, accountID string, e Email) {
	t.Helper()
	ctx := context.Background()
	if err := db.InAccount(ctx, accountID, func(tx *sqlxTx) error { return Enqueue(ctx, tx, accountID, e) }); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func listNotifications(t *testing.T, db *DB, accountID string, page Page) *Connection[*Notification] {
	t.Helper()
	ctx := context.Background()
	var conn *Connection[*Notification]
	err := db.InAccount(ctx, accountID, func(tx *sqlxTx) (err error) {
		conn, err = ListNotifications(ctx, tx, accountID, page)
		return err
	})
	if err != nil {
		t.Fatalf("ListNotifications: %v", err)
	}
	return conn
}

// asWorker runs fn in a transaction on the worker's scope.
func asWorker(db *DB, fn func(q Queryer) error) error {
	return db.CrossTenant(context.Background(), ScopeOutbox, func(tx *sqlxTx) error { return fn(tx) })
}

// claimEmail claims the next email due at at, or returns nil.
func claimEmail(t *testing.T, db *DB, at time.Time, lease time.Duration) *OutboxEmail {
	t.Helper()
	var e *OutboxEmail
	err := asWorker(db, func(q Queryer) (err error) {
		e, err = ClaimEmail(context.Background(), q, at, lease)
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
	err := db.InAccount(ctx, acc[0], func(tx *sqlxTx) error {
		if err := Enqueue(ctx, tx, acc[0], resetEmail("lost@example.com")); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("err = %v", err)
	}
	mustEnqueue(t, db, acc[0], resetEmail("kept@example.com"))

	conn := listNotifications(t, db, acc[0], Page{})
	if len(conn.Items) != 1 {
		t.Fatalf("%d notifications, want only the committed one", len(conn.Items))
	}
	n := conn.Items[0]
	if n.Recipient != "kept@example.com" || n.Kind != EmailPasswordReset || n.Status != EmailPending ||
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
	keyAdded := SSHKeyAddedData{UserName: "Ada", AccountName: "A", Title: "Laptop", Algorithm: "ssh-ed25519",
		Bits: 256, Fingerprint: "SHA256:x", AddedAt: time.Now(), AddedBy: "Ada"}
	noTitle := keyAdded
	noTitle.Title = " "
	sftp := SFTPEnabledData{UserName: "Ada", AccountName: "A", Host: "h", Port: 22, Login: "l",
		HostKeys: []HostKeyFingerprint{{Algorithm: "ssh-ed25519", Fingerprint: "SHA256:x"}}}
	badKey := sftp
	badKey.HostKeys = []HostKeyFingerprint{{Algorithm: "ssh-ed25519"}}
	customWithoutHost := sftp
	customWithoutHost.CustomLogin = "ada"
	tests := []struct {
		name string
		e    Email
		want string
	}{
		{"no data", Email{To: "a@example.com"}, "no data"},
		{"blank title", Email{To: "a@example.com", Data: noTitle}, "Title is required"},
		{"no time", Email{To: "a@example.com", Data: PasswordResetData{UserName: "Ada", Token: "t"}}, "ExpiresAt is required"},
		{"host key without fingerprint", Email{To: "a@example.com", Data: badKey}, "HostKeys.Fingerprint is required"},
		{"custom login without host", Email{To: "a@example.com", Data: customWithoutHost}, "DedicatedHost"},
		{"bad recipient", Email{To: "Ada <a@example.com>", Data: keyAdded}, "not a valid email address"},
		{"no recipient", Email{Data: keyAdded}, "email is required"},
	}
	for _, tt := range tests {
		err := db.InAccount(ctx, acc[0], func(tx *sqlxTx) error { return Enqueue(ctx, tx, acc[0], tt.e) })
		if ErrorCode(err) != EInternal || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want an internal error about %q", tt.name, err, tt.want)
		}
	}
	if n := len(listNotifications(t, db, acc[0], Page{}).Items); n != 0 {
		t.Errorf("%d emails enqueued, want none", n)
	}
	mustEnqueue(t, db, acc[0], Email{To: "a@example.com", Data: keyAdded})
	mustEnqueue(t, db, acc[0], Email{To: "a@example.com", Data: sftp})
}

func TestOutboxIsolatesTenants(t *testing.T) {
	ctx := context.Background()
	db, acc := newOutboxDB(t, 2)
	mustEnqueue(t, db, acc[0], resetEmail("a@example.com"))

	// Another tenant sees nothing, even asking for the first tenant's rows.
	if n := len(listNotifications(t, db, acc[1], Page{}).Items); n != 0 {
		t.Errorf("account 2 lists %d of its own, want 0", n)
	}
	var leaked int
	err := db.InAccount(ctx, acc[1], func(tx *sqlxTx) error {
		return tx.GetContext(ctx, &leaked, `SELECT count(*) FROM outbox`)
	})
	if err != nil || leaked != 0 {
		t.Errorf("account 2 counts %d outbox rows (%v), want 0", leaked, err)
	}
	// An account cannot enqueue into another's outbox...
	err = db.InAccount(ctx, acc[1], func(tx *sqlxTx) error { return Enqueue(ctx, tx, acc[0], resetEmail("x@example.com")) })
	if err == nil {
		t.Error("account 2 wrote into account 1's outbox")
	}
	// ...nor mark its own email as sent: only the worker records delivery.
	err = db.InAccount(ctx, acc[0], func(tx *sqlxTx) error {
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
	if n := listNotifications(t, db, acc[0], Page{}).Items[0]; n.Status != EmailPending {
		t.Errorf("status %s after a tenant's update, want PENDING", n.Status)
	}
}

func TestListNotificationsPages(t *testing.T) {
	db, acc := newOutboxDB(t, 1)
	for _, to := range []string{"first@example.com", "second@example.com", "third@example.com"} {
		mustEnqueue(t, db, acc[0], resetEmail(to))
	}
	page1 := listNotifications(t, db, acc[0], Page{First: 2})
	if len(page1.Items) != 2 || !page1.HasNext || page1.HasPrevious ||
		page1.Items[0].Recipient != "third@example.com" || page1.Items[1].Recipient != "second@example.com" {
		t.Fatalf("page 1: %+v %+v", page1, page1.Items)
	}
	page2 := listNotifications(t, db, acc[0], Page{First: 2, After: page1.Cursors[1]})
	if len(page2.Items) != 1 || page2.HasNext || !page2.HasPrevious || page2.Items[0].Recipient != "first@example.com" {
		t.Fatalf("page 2: %+v", page2)
	}

	ctx := context.Background()
	for _, p := range []Page{{After: "garbage"}, {After: encodeCursor("yesterday", page1.Items[0].ID)}, {First: MaxPageSize + 1}} {
		err := db.InAccount(ctx, acc[0], func(tx *sqlxTx) error {
			_, err := ListNotifications(ctx, tx, acc[0], p)
			return err
		})
		if ErrorCode(err) != EInvalid {
			t.Errorf("page %+v: err = %v, want INVALID", p, err)
		}
	}
}

func TestNotificationsPermissions(t *testing.T) {
	db, acc := newOutboxDB(t, 2)
	mustEnqueue(t, db, acc[0], resetEmail("a@example.com"))
	s := NewService(db)
	as := func(p *Principal) context.Context { return WithPrincipal(context.Background(), p) }
	admin := &Principal{Kind: KindUser, ID: "00000000-0000-0000-0000-000000000001", AccountID: acc[0], Role: RoleAdmin}
	user := &Principal{Kind: KindUser, ID: "00000000-0000-0000-0000-000000000002", AccountID: acc[0], Role: RoleUser}
	otherAdmin := &Principal{Kind: KindUser, ID: "00000000-0000-0000-0000-000000000003", AccountID: acc[1], Role: RoleOwner}
	staff := &Principal{Kind: KindStaff, ID: "00000000-0000-0000-0000-000000000004"}

	for _, p := range []*Principal{admin, staff} {
		conn, err := s.Notifications(as(p), acc[0], Page{})
		if err != nil || len(conn.Items) != 1 {
			t.Errorf("%s %s: %v, %+v", p.Kind, p.Role, err, conn)
		}
	}
	if _, err := s.Notifications(as(user), acc[0], Page{}); ErrorCode(err) != EForbidden {
		t.Errorf("plain user: err = %v, want FORBIDDEN", err)
	}
	if _, err := s.Notifications(as(otherAdmin), acc[0], Page{}); ErrorCode(err) != ENotFound {
		t.Errorf("another account's owner: err = %v, want NOT_FOUND", err)
	}
	if _, err := s.Notifications(context.Background(), acc[0], Page{}); ErrorCode(err) != EUnauthenticated {
		t.Errorf("anonymous: err = %v, want UNAUTHENTICATED", err)
	}
	if _, err := s.Notifications(as(staff), "not-a-uuid", Page{}); ErrorCode(err) != ENotFound {
		t.Errorf("staff, bad account ID: err = %v, want NOT_FOUND", err)
	}
}

func TestClaimAndRecordDelivery(t *testing.T) {
	ctx := context.Background()
	db, acc := newOutboxDB(t, 1)
	mustEnqueue(t, db, acc[0], resetEmail("a@example.com"))
	now := time.Now().Add(time.Second)
	claim := func(at time.Time) *OutboxEmail { return claimEmail(t, db, at, 10*time.Minute) }

	first := claim(now)
	if first == nil || first.Attempts != 1 || first.Unfinished || first.AccountID != acc[0] || first.Kind != EmailPasswordReset {
		t.Fatalf("first claim: %+v", first)
	}
	var data PasswordResetData
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
	err := asWorker(db, func(q Queryer) error { return MarkEmailSent(ctx, q, first, now, "late", "x@skiff") })
	if !errors.Is(err, ErrClaimLost) {
		t.Errorf("stale claim recorded: %v", err)
	}
	err = asWorker(db, func(q Queryer) error { return MarkEmailSent(ctx, q, second, now, "Reset your password", "id@skiff") })
	if err != nil {
		t.Fatal(err)
	}
	n := listNotifications(t, db, acc[0], Page{}).Items[0]
	if n.Status != EmailSent || n.Attempts != 2 || n.SentAt == nil || n.SentAt.Sub(now).Abs() > time.Microsecond ||
		n.Subject != "Reset your password" {
		t.Errorf("after sending: %+v", n)
	}
	var stored string
	err = db.CrossTenant(ctx, ScopeOutbox, func(tx *sqlxTx) error {
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
	fail := func(e *OutboxEmail, reason string, retryAt time.Time) {
		t.Helper()
		if err := asWorker(db, func(q Queryer) error {
			return MarkEmailFailed(ctx, q, e, reason, retryAt, "Subject", "id@skiff")
		}); err != nil {
			t.Fatal(err)
		}
	}

	fail(claimEmail(t, db, now, time.Minute), strings.Repeat("é", 2000), now.Add(time.Hour))
	n := listNotifications(t, db, acc[0], Page{}).Items[0]
	if n.Status != EmailPending || n.Attempts != 1 || len([]rune(n.LastError)) != maxErrorLen {
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
	n = listNotifications(t, db, acc[0], Page{}).Items[0]
	if n.Status != EmailFailed || n.LastError != "refused" || n.Attempts != 2 {
		t.Errorf("after giving up: %+v", n)
	}
	if e := claimEmail(t, db, now.Add(48*time.Hour), time.Minute); e != nil {
		t.Error("a failed email was claimed again")
	}
}
