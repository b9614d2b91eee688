package domain_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// newNode is another Skiff node on the fixture's database: a Directory with
// its own connection pool that hears changes through notifications at dsn.
func (f *dedicatedDirectoryFixture) newNode(dsn string) *sftplogin.Directory {
	f.t.Helper()
	db, err := tenant.Open(context.Background(), f.url)
	if err != nil {
		f.t.Fatal(err)
	}
	node := sftplogin.NewDirectory(db)
	// As skiff serve starts.
	if err := node.EnsureHostKeys(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	if err := node.LoadDedicatedIPs(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = db.Close() })
	f.listen(node, dsn)
	return node
}

// listen runs node's Listen on dsn until the test ends, as skiff serve does.
func (f *dedicatedDirectoryFixture) listen(node *sftplogin.Directory, dsn string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = node.Listen(ctx, dsn, slog.New(slog.DiscardHandler))
	}()
	f.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitListening waits until node's notification connection listens.
func waitListening(t *testing.T, node *sftplogin.Directory) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !node.ListeningForDedicatedIPs(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the directory is not listening for dedicated IP changes")
		}
	}
}

// within polls check until it returns "" and returns how long that took, or
// fails with check's last answer after limit.
func within(t *testing.T, limit time.Duration, check func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		why := check()
		if why == "" {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("after %v: %s", limit, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A provisioning or a release on one node reaches the others within moments
// through notifications, and within about a second when a node's
// notification connection is down; routing a connection costs no query.
func TestDedicatedIPsFollowOtherNodes(t *testing.T) {
	f := newDedicatedDirectoryFixture(t)
	ctx := context.Background()
	client := newClient()
	listening := f.newNode(f.url)
	deaf := f.newNode("postgres://127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1") // LISTEN never connects
	waitListening(t, listening)
	if deaf.ListeningForDedicatedIPs() {
		t.Fatal("a directory without a notification connection says it listens")
	}
	// This node made the changes: it hears of them from the service at once.
	f.svc.DedicatedIPs.Config.Changed = f.dir.DedicatedIPsChanged
	f.listen(f.dir, f.url)
	waitListening(t, f.dir)

	acme, err := f.dir.HostKeys(ctx, f.ipA)
	if err != nil {
		t.Fatal(err)
	}
	deployment, err := f.dir.HostKeys(ctx, sharedDest)
	if err != nil {
		t.Fatal(err)
	}
	// route says what a node does on Acme's IP: whose keys it presents and
	// whether Acme's custom login resolves there.
	route := func(node *sftplogin.Directory) string {
		keys, err := node.HostKeys(ctx, f.ipA)
		if err != nil {
			return err.Error()
		}
		l, err := node.PasswordLogin(ctx, f.ipA, client(), "backup", sftpPassword)
		switch {
		case slices.Equal(fingerprintsOf(keys), fingerprintsOf(acme)) && err == nil && l.UserID == f.userA.ID:
			return "dedicated"
		case slices.Equal(fingerprintsOf(keys), fingerprintsOf(deployment)) && err != nil && strings.HasSuffix(err.Error(), "unknown login"):
			return "shared"
		}
		return "inconsistent: keys " + strings.Join(fingerprintsOf(keys), " ") + ", login: " + errString(err)
	}
	wantRoute := func(node *sftplogin.Directory, name, want string, limit time.Duration) time.Duration {
		t.Helper()
		return within(t, limit, func() string {
			if got := route(node); got != want {
				return name + " routes Acme's IP as " + got + ", want " + want
			}
			return ""
		})
	}
	// wantRouteBy is wantRoute for a node that follows changes only by its
	// copy's age: every connection from a second after the change on (by a
	// copy read before it) must route as want, whatever the machine's load.
	wantRouteBy := func(node *sftplogin.Directory, name, want string, changed time.Time) {
		t.Helper()
		by := changed.Add(time.Second)
		within(t, 10*time.Second, func() string {
			began := time.Now()
			if got := route(node); got != want {
				if began.After(by) {
					t.Fatalf("%s routes Acme's IP as %s %v after the change, want %s within a second", name, got, began.Sub(changed), want)
				}
				return name + " routes Acme's IP as " + got + ", want " + want
			}
			return ""
		})
	}
	for name, node := range map[string]*sftplogin.Directory{"this node": f.dir, "a listening node": listening, "a deaf node": deaf} {
		wantRoute(node, name, "dedicated", 0)
	}

	// Once a node holds the dedicated IPs, routing a connection costs it no
	// query: it routes with its database out of reach.
	cutOff := f.newNode(f.url)
	waitListening(t, cutOff)
	if err := cutOff.DB.Close(); err != nil {
		t.Fatal(err)
	}
	for dest, want := range map[netip.Addr][]string{f.ipA: fingerprintsOf(acme), sharedDest: fingerprintsOf(deployment), {}: fingerprintsOf(deployment)} {
		if keys, err := cutOff.HostKeys(ctx, dest); err != nil || !slices.Equal(fingerprintsOf(keys), want) {
			t.Errorf("host keys at %v without the database: %v, %v", dest, fingerprintsOf(keys), err)
		}
	}

	if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, f.account.ID); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	wantRoute(f.dir, "this node", "shared", 0)
	// Without notifications the listening node would trust its copy for
	// minutes: any bound well below that shows they arrive.
	took := wantRoute(listening, "a listening node", "shared", 10*time.Second)
	t.Logf("a listening node followed the release in %v", took)
	wantRouteBy(deaf, "a deaf node", "shared", released)
	// Another account's login ID works on a released address, everywhere.
	for _, node := range []*sftplogin.Directory{f.dir, listening, deaf} {
		if l, err := node.PasswordLogin(ctx, f.ipA, client(), f.loginB, sftpPassword); err != nil || l.UserID != f.userB.ID {
			t.Errorf("Beta's login ID on the released address: %+v, %v", l, err)
		}
	}

	if _, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, f.account.ID, f.ipA.String()); err != nil {
		t.Fatal(err)
	}
	provisioned := time.Now()
	wantRoute(f.dir, "this node", "dedicated", 0)
	wantRoute(listening, "a listening node", "dedicated", 10*time.Second)
	wantRouteBy(deaf, "a deaf node", "dedicated", provisioned)
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// The login lookup scopes itself (runtime role, directory scope) for its
// own statement only: the connection goes back to the pool as it was, and a
// caller's transaction keeps its own scope.
func TestSFTPLoginLeavesNoScope(t *testing.T) {
	f := newDedicatedDirectoryFixture(t)
	ctx := context.Background()
	x, err := sqlx.Open("postgres", f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	x.SetMaxOpenConns(1) // every statement on the one connection the login used
	dir := sftplogin.NewDirectory(tenant.NewDB(x))
	if l, err := dir.PublicKeyLogin(ctx, f.ipA, clientAddr, "backup", f.keyA); err != nil || l.UserID != f.userA.ID {
		t.Fatalf("key login: %+v, %v", l, err)
	}
	var who, role, account, scope string
	settings := `SELECT current_user, current_setting('role'), coalesce(current_setting('skiff.account_id', true), ''),
		coalesce(current_setting('skiff.scope', true), '')`
	if err := x.QueryRowContext(ctx, settings).Scan(&who, &role, &account, &scope); err != nil {
		t.Fatal(err)
	}
	if who == tenant.AppRole || role != "none" || account != "" || scope != "" {
		t.Errorf("after a login the connection is %s, role %q, account %q, scope %q; want it as it was", who, role, account, scope)
	}

	tx, err := x.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	if _, err := tx.ExecContext(ctx, `SELECT set_config('skiff.account_id', $1, true), set_config('skiff.scope', 'staff', true)`, f.beta.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM skiff_sftp_login($1, NULL, '')`, f.loginA); err != nil || n != 1 {
		t.Fatalf("lookup inside a transaction: %d rows, %v", n, err)
	}
	if err := tx.QueryRowContext(ctx, settings).Scan(&who, &role, &account, &scope); err != nil {
		t.Fatal(err)
	}
	if role != "none" || account != f.beta.ID || scope != "staff" {
		t.Errorf("after a lookup the caller's transaction has role %q, account %q, scope %q; want its own", role, account, scope)
	}
}

// OnDedicatedIPsChange runs on the node that made a change before the
// change returns, on a listening node within moments, and on a node whose
// notification connection is down within about a second (it reads the
// list every second), with no connection to prompt it; host-key changes
// alone do not run it.
func TestOnDedicatedIPsChange(t *testing.T) {
	f := newDedicatedDirectoryFixture(t)
	listening := f.newNode(f.url)
	deaf := f.newNode("postgres://127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1") // LISTEN never connects
	waitListening(t, listening)
	f.svc.DedicatedIPs.Config.Changed = f.dir.DedicatedIPsChanged
	if err := f.dir.LoadDedicatedIPs(context.Background()); err != nil {
		t.Fatal(err)
	}
	var calls [3]atomic.Int32
	nodes := []*sftplogin.Directory{f.dir, listening, deaf}
	for i, node := range nodes {
		node.OnDedicatedIPsChange(func() { calls[i].Add(1) })
		if got := node.DedicatedIPAccount(f.ipA); got != f.account.ID {
			t.Fatalf("node %d: Acme's IP leads to %q, want Acme", i, got)
		}
	}

	// A host-key change makes the listening node read the list again, but
	// no address leads elsewhere.
	before := listening.DedicatedIPReads()
	if _, err := f.dir.DB.X.Exec(`UPDATE host_keys SET private_key = private_key WHERE account_id = $1`, f.account.ID); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, func() string {
		if listening.DedicatedIPReads() == before {
			return "the listening node did not read the list again after a host-key change"
		}
		return ""
	})
	if n := calls[1].Load(); n != 0 {
		t.Errorf("a host-key change ran the callback %d times", n)
	}

	if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, f.account.ID); err != nil {
		t.Fatal(err)
	}
	if n := calls[0].Load(); n != 1 || f.dir.DedicatedIPAccount(f.ipA) != "" {
		t.Errorf("this node: callback ran %d times by the time the release returned, Acme's IP leads to %q", n, f.dir.DedicatedIPAccount(f.ipA))
	}
	// Generous bounds: what the deaf node owns is when it begins to read
	// (below); a read itself takes what the database takes.
	for i := range 2 {
		within(t, 10*time.Second, func() string {
			if calls[i+1].Load() == 0 || nodes[i+1].DedicatedIPAccount(f.ipA) != "" {
				return fmt.Sprintf("node %d has not seen the release", i+1)
			}
			return ""
		})
	}
	// The deaf node reads the list every second: each read begins a second
	// after the last one began, or as soon as it ended when it took longer
	// (a loaded machine). Every read sees what was committed before it
	// began, so a change waits about a second; a tick skipped now and then
	// would leave it unseen for two.
	last, lastEnded := deaf.DedicatedIPsReadAt(), time.Now()
	for range 4 {
		var next time.Time
		within(t, 10*time.Second, func() string {
			if next = deaf.DedicatedIPsReadAt(); !next.After(last) {
				return "the deaf node does not read the dedicated IPs again"
			}
			return ""
		})
		ended := time.Now() // at or after the read's end
		due := last.Add(time.Second)
		if lastEnded.After(due) {
			due = lastEnded
		}
		if late := next.Sub(due); late > 500*time.Millisecond {
			t.Errorf("the deaf node read the dedicated IPs %v after its last read began (%v after it was due), want every second", next.Sub(last), late)
		}
		last, lastEnded = next, ended
	}
	// Beta's address did not move.
	for i, node := range nodes {
		if got := node.DedicatedIPAccount(f.ipB); got != f.beta.ID {
			t.Errorf("node %d: Beta's IP leads to %q", i, got)
		}
	}
}
