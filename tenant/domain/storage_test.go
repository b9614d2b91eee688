package domain_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pkg/sftp"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/storageuse"
)

// sessionQuota is the Quota of a session connect opens: the account's
// meter when w.quotas is set, its calls of Reserve counted.
func (w *world) sessionQuota(accountID string) vfs.Quota {
	if !w.quotas {
		return nil
	}
	return countedQuota{w.svc.Storage.Meter(accountID), &w.reserves}
}

// countedQuota is a Meter that counts its calls of Reserve: its round
// trips to PostgreSQL before a write.
type countedQuota struct {
	*storageuse.Meter
	reserves *atomic.Int64
}

func (q countedQuota) Reserve(ctx context.Context, tree string, need, want int64) (int64, error) {
	q.reserves.Add(1)
	return q.Meter.Reserve(ctx, tree, need, want)
}

// storageFiles is the reconcile pass's view of the world's storage, leaving
// out uploads in progress as sftp.StorageFiles does.
type storageFiles struct{ w *world }

func (f storageFiles) Accounts() ([]string, error) { return f.w.store.Accounts() }
func (f storageFiles) TreeSizes(accountID string) (map[string]int64, error) {
	return f.w.store.TreeSizes(accountID, func(name string) bool { return filepath.Ext(name) == ".partial" })
}

func (w *world) setAccountQuota(bytes int64) {
	w.t.Helper()
	staff := tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindStaff, ID: "00000000-0000-4000-8000-000000000001", Name: "Support"})
	if _, err := w.svc.Storage.SetStorageQuota(staff, w.account.ID, &bytes); err != nil {
		w.t.Fatal(err)
	}
}

// storageEmails lists the storage emails of the account, oldest first, as "percent to".
func (w *world) storageEmails() []string {
	w.t.Helper()
	var got []string
	err := w.svc.DB.InAccount(context.Background(), w.account.ID, func(tx *sqlx.Tx) error {
		return tx.Select(&got, `SELECT (data->>'Percent') || ' ' || recipient FROM outbox
			WHERE account_id = $1 AND kind = $2 ORDER BY created_at, id`, w.account.ID, outbox.EmailStorageQuota)
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return got
}

func TestStorageQuotaReservesSettlesAndEmailsOwnersOncePerCrossing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	u := w.user("Uma", tenant.RoleUser)
	w.setAccountQuota(1000)
	m := w.svc.Storage.Meter(w.account.ID)

	if got, err := m.Reserve(ctx, u.ID, 700, 700); err != nil || got != 700 {
		t.Fatalf("reserve 700 of 1000: %v %v", got, err)
	}
	// Another session cannot take what the first set aside.
	other := w.svc.Storage.Meter(w.account.ID)
	if got, err := other.Reserve(ctx, w.owner.ID, 301, 301); err != nil || got != 0 {
		t.Fatalf("reserve 301 with 700 of 1000 reserved: %v %v", got, err)
	}
	if got := w.storageEmails(); len(got) != 1 || got[0] != "100 owner@acme.example" {
		t.Fatalf("emails after a refusal: %q", got)
	}
	// 850 written of the 700 reserved and 150 more: 85 %, after the 100 % email: no new email.
	if got, err := m.Reserve(ctx, u.ID, 150, 150); err != nil || got != 150 {
		t.Fatalf("reserve 150 more: %v %v", got, err)
	}
	if err := m.Settle(ctx, u.ID, 850, 850); err != nil {
		t.Fatal(err)
	}
	used, quota, limited, err := m.Space(ctx, u.ID)
	if err != nil || used != 850 || quota != 1000 || !limited {
		t.Fatalf("space: %d of %d (%v) %v", used, quota, limited, err)
	}
	// Below 80 %, then 80 % again: one more email; the same level again: none.
	if err := m.Settle(ctx, u.ID, 0, -400); err != nil {
		t.Fatal(err)
	}
	if err := m.Settle(ctx, u.ID, 0, 360); err != nil {
		t.Fatal(err)
	}
	if err := m.Settle(ctx, u.ID, 0, 10); err != nil {
		t.Fatal(err)
	}
	if got := w.storageEmails(); len(got) != 2 || got[1] != "80 owner@acme.example" {
		t.Fatalf("emails after crossing 80 %%: %q", got)
	}
	if err := m.Settle(ctx, u.ID, 0, 180); err != nil { // 1000 of 1000
		t.Fatal(err)
	}
	if got := w.storageEmails(); len(got) != 3 || got[2] != "100 owner@acme.example" {
		t.Fatalf("emails at 100 %%: %q", got)
	}

	// A user's own quota binds before the account's.
	lim := int64(10)
	if _, err := w.svc.Storage.SetUserStorageQuota(w.as(w.owner), w.owner.ID, &lim); err != nil {
		t.Fatal(err)
	}
	if err := m.Settle(ctx, u.ID, 0, -1000); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Reserve(ctx, w.owner.ID, 11, 11); err != nil || got != 0 {
		t.Fatalf("reserve 11 over the owner's own 10: %v %v", got, err)
	}
	if got, err := m.Reserve(ctx, u.ID, 11, 11); err != nil || got != 11 {
		t.Fatalf("reserve 11 for another user: %v %v", got, err)
	}
	// A project folder counts against its creator's quota.
	f := w.folder(w.owner, "Reports")
	if got, err := m.Reserve(ctx, f.ID, 11, 11); err != nil || got != 0 {
		t.Fatalf("reserve 11 in the owner's folder: %v %v", got, err)
	}
	if ok, err := m.Move(ctx, u.ID, f.ID, 11); err != nil || ok {
		t.Fatalf("move 11 into the owner's folder: %v %v", ok, err)
	}
}

// The reconcile pass sets usage from the disk, leaves trees with writes in
// progress alone, and drops reservations that expired (a node that died).
func TestStorageReconcileFixesDrift(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	u := w.user("Uma", tenant.RoleUser)
	home, ownerHome := w.home(u), w.home(w.owner)
	if err := os.WriteFile(filepath.Join(home, "a.bin"), make([]byte, 1234), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "upload.partial"), make([]byte, 99), 0o640); err != nil {
		t.Fatal(err)
	}
	sparse, err := os.Create(filepath.Join(ownerHome, "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(1 << 30); err != nil { // sparse: counts at its length
		t.Fatal(err)
	}
	sparse.Close()
	m := w.svc.Storage.Meter(w.account.ID)
	if err := m.Settle(ctx, u.ID, 0, 5000); err != nil { // drift: recorded, never written
		t.Fatal(err)
	}
	if got, err := m.Reserve(ctx, w.owner.ID, 10, 10); err != nil || got != 10 { // a write in progress
		t.Fatal(got, err)
	}
	n, err := w.svc.Storage.Reconcile(ctx, storageFiles{w}, w.account.ID)
	if err != nil || n != 1 {
		t.Fatalf("reconcile: %d trees, %v; want 1 (the owner's home has a write in progress)", n, err)
	}
	w.wantUsage(u, 1234)
	if err := m.Settle(ctx, w.owner.ID, 10, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.Storage.ReconcileAll(ctx, storageFiles{w}, nil); err != nil {
		t.Fatal(err)
	}
	w.wantUsage(w.owner, 1<<30)
	st, err := w.svc.Storage.AccountStorage(w.as(w.owner), w.account.ID)
	if err != nil || st.Used != 1<<30+1234 {
		t.Fatalf("account storage %+v %v", st, err)
	}
}

// Files of an account the database does not have (a database restored from
// before the account was made) are left alone by the reconcile pass, which
// says so in words rather than failing on a foreign key, and goes on with
// the other accounts.
func TestStorageReconcileLeavesUnknownAccountsAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	stranger := "5e1f0d2c-7a4b-4c3d-9e8f-0123456789ab"
	home := filepath.Join(w.base, stranger, "users", "6a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d")
	if err := os.MkdirAll(home, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "kept.bin"), make([]byte, 77), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.home(w.owner), "mine.bin"), make([]byte, 4321), 0o640); err != nil {
		t.Fatal(err)
	}
	if n, err := w.svc.Storage.Reconcile(ctx, storageFiles{w}, stranger); !errors.Is(err, storageuse.ErrUnknownAccount) || n != 0 {
		t.Errorf("reconcile of an unknown account: %d, %v; want 0, ErrUnknownAccount", n, err)
	}
	var logs testkit.SyncBuffer
	if err := w.svc.Storage.ReconcileAll(ctx, storageFiles{w}, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "the database does not have") ||
		!strings.Contains(got, stranger) || strings.Contains(got, "reconcile failed") || strings.Contains(got, "foreign key") {
		t.Errorf("log:\n%s", got)
	}
	w.wantUsage(w.owner, 4321) // the account it has was reconciled
	if _, err := os.Stat(filepath.Join(home, "kept.bin")); err != nil {
		t.Errorf("the unknown account's file: %v", err)
	}
}

// A pass cut short by the server's stop is not a failure: it ends without
// a warning.
func TestStorageReconcileStopsQuietly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.home(w.owner) // an account with storage, for the pass to walk
	var logs testkit.SyncBuffer
	files := stoppingFiles{storageFiles{w}, cancel}
	if err := w.svc.Storage.ReconcileAll(ctx, files, slog.New(slog.NewTextHandler(&logs, nil))); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
	if logs.String() != "" {
		t.Errorf("a pass stopped midway logged:\n%s", logs.String())
	}
}

// stoppingFiles stops the server (cancel) while an account is walked.
type stoppingFiles struct {
	storageFiles
	cancel context.CancelFunc
}

func (f stoppingFiles) TreeSizes(accountID string) (map[string]int64, error) {
	f.cancel()
	return nil, context.Canceled
}

// wantUsage waits for u's usage to be want: an SFTP close settles in the
// background.
func (w *world) wantUsage(u *tenant.User, want int64) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := w.svc.Storage.UserStorage(w.as(w.owner), u)
		if err == nil && st != nil && st.Used == want {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("usage of %s: %+v %v, want %d", u.Name, st, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Through SFTP with the quotas in PostgreSQL: an upload past the account's
// quota fails with FAILURE "quota exceeded" and stores nothing; a
// connection dropped mid-upload leaves usage as it was and no reservation;
// the reconcile pass then finds nothing to correct.
func TestStorageQuotaOverSFTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.quotas = true
	w.setAccountQuota(1 << 20)
	c := w.connect(w.owner)
	if err := put(c, "a.bin", strings.Repeat("a", 600<<10)); err != nil {
		t.Fatal(err)
	}
	err := put(c, "b.bin", strings.Repeat("b", 600<<10))
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure || !strings.Contains(se.Error(), "quota exceeded") {
		t.Fatalf("upload past the quota: %v; want FAILURE \"quota exceeded\"", err)
	}
	w.wantUsage(w.owner, 600<<10)
	// The refused upload's close gives its room back in the background:
	// until then another session finds no room (the quota is tight).
	w.wantNoReservations("after the refused upload")

	// A connection dropped mid-upload.
	c2 := w.connect(w.owner)
	f, err := c2.Create("killed.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 200<<10)); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	w.wantNoReservations("after the connection dropped")
	w.wantUsage(w.owner, 600<<10)
	if n, err := w.svc.Storage.Reconcile(context.Background(), storageFiles{w}, w.account.ID); err != nil || n != 0 {
		t.Fatalf("reconcile after a killed upload corrected %d trees (%v), want 0", n, err)
	}
	if got := w.storageEmails(); len(got) != 1 || got[0] != "100 owner@acme.example" {
		t.Fatalf("emails: %q", got)
	}
}

// Through SFTP with the quotas in PostgreSQL, a session reserves room once
// for its first file: the later ones make no round trip before their
// writes. Their growth is settled in the background, and the room left
// goes back once the session stops writing.
func TestStorageQuotaPoolOverSFTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.quotas = true
	w.setAccountQuota(1 << 40)
	c := w.connect(w.owner)
	for i := range 4 {
		if err := put(c, fmt.Sprintf("f%d.bin", i), strings.Repeat("f", 100<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.reserves.Load(); n != 1 {
		t.Errorf("4 uploads in one session reserved %d times, want 1", n)
	}
	w.wantUsage(w.owner, 400<<10)
	w.wantNoReservations("once the session is idle")
}

// Room asked for ahead of the writes (need 0) is granted whole or not at
// all, and no room for it is no refusal (no 100 % email); a reservation
// that expired (its session's node died) is not revived by the session's
// next one, and is not renewed.
func TestStorageReserveAheadAndExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.setAccountQuota(1000)
	m := w.svc.Storage.Meter(w.account.ID)
	if got, err := m.Reserve(ctx, w.owner.ID, 0, 1001); err != nil || got != 0 {
		t.Fatalf("reserve ahead past the quota: %v %v", got, err)
	}
	if got, err := m.Reserve(ctx, w.owner.ID, 0, 600); err != nil || got != 600 {
		t.Fatalf("reserve ahead within the quota: %v %v", got, err)
	}
	if got := w.storageEmails(); len(got) != 0 {
		t.Fatalf("emails after reserving ahead: %q", got)
	}
	expire := func() {
		t.Helper()
		err := w.svc.DB.InAccount(ctx, w.account.ID, func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`UPDATE storage_reservations SET expires_at = now() - interval '1 second' WHERE account_id = $1`, w.account.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	expire()
	if got, err := m.Reserve(ctx, w.owner.ID, 0, 0); err != nil || got != 0 {
		t.Fatalf("renew: %v %v", got, err)
	}
	if used, _, _, err := m.Space(ctx, w.owner.ID); err != nil || used != 0 {
		t.Fatalf("an expired reservation, renewed, counts %d (%v); want 0", used, err)
	}
	if got, err := m.Reserve(ctx, w.owner.ID, 700, 700); err != nil || got != 700 {
		t.Fatalf("reserve after the expiry: %v %v", got, err)
	}
	if used, _, _, err := m.Space(ctx, w.owner.ID); err != nil || used != 700 {
		t.Fatalf("after a new reservation over an expired one: %d (%v); want 700", used, err)
	}
}

// wantNoReservations waits for the account to have no reservation left.
func (w *world) wantNoReservations(what string) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.reservations() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := w.reservations(); n != 0 {
		w.t.Fatalf("%s: %d reservations left", what, n)
	}
}

// reservations counts the account's reservations.
func (w *world) reservations() int {
	w.t.Helper()
	var n int
	err := w.svc.DB.InAccount(context.Background(), w.account.ID, func(tx *sqlx.Tx) error {
		return tx.Get(&n, `SELECT count(*) FROM storage_reservations WHERE account_id = $1`, w.account.ID)
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// BenchmarkStorageMeter is what one SFTP upload costs the database: a
// reservation of a chunk and its settlement at close, on a quota of 1 TiB.
// An upload of up to 64 MiB (quotaChunk) makes exactly these two calls.
//
//	go test -run XXX -bench StorageMeter ./tenant/domain
func BenchmarkStorageMeter(b *testing.B) {
	ctx := context.Background()
	db, err := tenant.Open(ctx, pgtest.NewDB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	svc := domain.New(db)
	a, owner, err := svc.Accounts.CreateAccount(tenant.SystemContext(ctx), account.CreateAccountInput{
		Name: "Acme", OwnerEmail: "owner@acme.example", OwnerName: "Olive Owner", OwnerPassword: password,
	})
	if err != nil {
		b.Fatal(err)
	}
	quota := int64(1) << 40
	staff := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindStaff, ID: "00000000-0000-4000-8000-000000000001", Name: "Support"})
	if _, err := svc.Storage.SetStorageQuota(staff, a.ID, &quota); err != nil {
		b.Fatal(err)
	}
	m := svc.Storage.Meter(a.ID)
	for b.Loop() {
		got, err := m.Reserve(ctx, owner.ID, 32<<10, 64<<20)
		if err != nil || got != 64<<20 {
			b.Fatal(got, err)
		}
		if err := m.Settle(ctx, owner.ID, got, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// Reservations and usage beyond what an int64 holds (a client writing at an
// offset near 2^62 in an account without a quota, from several sessions)
// neither fail the quota checks of the account's other users, which would
// let their writes through unchecked, nor the pages that show usage: sums are
// capped at the largest int64.
func TestStorageHugeReservationsKeepQuotasWorking(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	u := w.user("Uma", tenant.RoleUser)
	lim := int64(1000)
	if _, err := w.svc.Storage.SetUserStorageQuota(w.as(w.owner), u.ID, &lim); err != nil {
		t.Fatal(err)
	}
	big := int64(math.MaxInt64/2 + 1)
	m, other := w.svc.Storage.Meter(w.account.ID), w.svc.Storage.Meter(w.account.ID)
	for i, meter := range []*storageuse.Meter{m, m, other} {
		if got, err := meter.Reserve(ctx, w.owner.ID, big, big); err != nil || got != big {
			t.Fatalf("reservation %d of 2^62 for the owner, who has no quota: %v %v", i, got, err)
		}
	}
	if got, err := m.Reserve(ctx, u.ID, 1001, 1001); err != nil || got != 0 {
		t.Fatalf("reserve 1001 over Uma's 1000: %v %v; want 0, refused", got, err)
	}
	if got, err := other.Reserve(ctx, u.ID, 600, 600); err != nil || got != 600 {
		t.Fatalf("reserve 600 of Uma's 1000: %v %v", got, err)
	}
	if used, quota, limited, err := m.Space(ctx, u.ID); err != nil || used != 600 || quota != 1000 || !limited {
		t.Fatalf("Uma's space: %d of %d (%v) %v", used, quota, limited, err)
	}
	if used, _, limited, err := m.Space(ctx, w.owner.ID); err != nil || used != math.MaxInt64 || limited {
		t.Fatalf("the owner's space: %d (%v) %v; want the largest int64, no quota", used, limited, err)
	}
	for range 2 {
		if err := m.Settle(ctx, w.owner.ID, 0, big); err != nil {
			t.Fatalf("settle 2^62 stored: %v", err)
		}
	}
	if err := m.Settle(ctx, w.owner.ID, 0, big); err != nil {
		t.Fatalf("settle 2^62 stored: %v", err)
	}
	w.setAccountQuota(1 << 40)
	if got, err := other.Reserve(ctx, u.ID, 1, 1); err != nil || got != 0 {
		t.Fatalf("reserve 1 with the account over its quota: %v %v; want 0, refused", got, err)
	}
	st, err := w.svc.Storage.AccountStorage(w.as(w.owner), w.account.ID)
	if err != nil || st.Used != math.MaxInt64 {
		t.Fatalf("account storage: %+v %v; want the largest int64 used", st, err)
	}
	owner, err := w.svc.Storage.UserStorage(w.as(w.owner), w.owner)
	if err != nil || owner.Used != math.MaxInt64 {
		t.Fatalf("the owner's storage: %+v %v; want the largest int64 used", owner, err)
	}
}
