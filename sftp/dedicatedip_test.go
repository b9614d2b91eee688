package sftp

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// Loopback addresses of the dedicated IP tests: every node listens on all
// three; Acme holds the second, Beta the third.
const (
	sharedTestIP = "127.0.0.1"
	acmeTestIP   = "127.0.0.2"
	betaTestIP   = "127.0.0.3"
)

// dedicatedFixture is two accounts with a dedicated IP each and an SFTP
// user each, on one database that nodes share.
type dedicatedFixture struct {
	t                  *testing.T
	url                string
	db                 *tenant.DB
	svc                *domain.Domain
	staff              context.Context
	acme, beta         string // account IDs
	uma, ben           string // login IDs: Uma is Acme's, Ben is Beta's
	store              *storage.Local
	password           string
	changedOnFirstNode func()
}

// dedicatedNode is one Skiff node: its directory hears other nodes'
// changes through notifications, and its listener ends sessions on
// released addresses.
type dedicatedNode struct {
	dir     *sftplogin.Directory
	backend *TenantBackend
	srv     *Server
	logs    *logBuffer
	at      map[string]string // host:port by IP
}

func newDedicatedFixture(t *testing.T) *dedicatedFixture {
	t.Helper()
	return newDedicatedFixtureOn(t, pgtest.NewDB(t))
}

// newDedicatedFixtureOn is newDedicatedFixture on the migrated database at url.
func newDedicatedFixtureOn(t *testing.T, url string) *dedicatedFixture {
	t.Helper()
	ctx := context.Background()
	f := &dedicatedFixture{t: t, url: url, password: "a long enough password 42"}
	var err error
	if f.db, err = tenant.Open(ctx, f.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	f.svc = domain.New(f.db)
	if err := sftplogin.NewDirectory(f.db).EnsureHostKeys(ctx); err != nil {
		t.Fatal(err)
	}
	pool, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{netip.MustParsePrefix(acmeTestIP + "/32"), netip.MustParsePrefix(betaTestIP + "/32")})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.DedicatedIPs.Config = sftplogin.DedicatedIPConfig{Pool: pool, Changed: func() {
		if f.changedOnFirstNode != nil {
			f.changedOnFirstNode()
		}
	}}
	staff, err := f.svc.People.CreateStaff(tenant.SystemContext(ctx), "support@skiff.test", "Sam", "staff password 123")
	if err != nil {
		t.Fatal(err)
	}
	f.staff = tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindStaff, ID: staff.ID, Name: staff.Name, Email: staff.Email})
	f.acme, f.uma = f.account("Acme", "acme.test", acmeTestIP)
	f.beta, f.ben = f.account("Beta", "beta.test", betaTestIP)
	if f.store, err = storage.NewLocal(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	return f
}

// account creates an account with the SFTP module, a user with SFTP on,
// and the dedicated IP ip, and returns the account's ID and the user's
// login ID.
func (f *dedicatedFixture) account(name, domain, ip string) (string, string) {
	f.t.Helper()
	account, owner, err := f.svc.Accounts.CreateAccount(f.staff, account.CreateAccountInput{Name: name, OwnerEmail: "owner@" + domain, OwnerName: "Owner"})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.SFTP.ActivateSFTPModule(f.staff, account.ID, 5); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, account.ID, ip); err != nil {
		f.t.Fatal(err)
	}
	ownerCtx := tenant.WithPrincipal(context.Background(), &tenant.Principal{Kind: tenant.KindUser, ID: owner.ID,
		AccountID: owner.AccountID, Role: owner.Role, Name: owner.Name, Email: owner.Email})
	user, err := f.svc.People.CreateUser(ownerCtx, people.CreateUserInput{Email: "user@" + domain, Name: "User", Password: f.password, SFTPEnabled: true})
	if err != nil {
		f.t.Fatal(err)
	}
	creds, err := f.svc.SFTP.SFTPCredentials(ownerCtx, user.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return account.ID, creds.Login
}

// node starts a node on the fixture's database, wired as skiff serve wires
// it, and waits until it hears notifications.
func (f *dedicatedFixture) node() *dedicatedNode {
	f.t.Helper()
	return f.nodeOn(f.db, f.url, nil)
}

// nodeOn is node with its own connections to the database, db at url, and
// edit (if not nil) applied to its backend.
func (f *dedicatedFixture) nodeOn(db *tenant.DB, url string, edit func(*TenantBackend)) *dedicatedNode {
	t := f.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &dedicatedNode{dir: sftplogin.NewDirectory(db), logs: &logBuffer{}, at: map[string]string{}}
	if err := n.dir.LoadDedicatedIPs(ctx); err != nil {
		t.Fatal(err)
	}
	backend := &TenantBackend{Directory: n.dir, Storage: f.store}
	if edit != nil {
		edit(backend)
	}
	n.backend = backend
	var err error
	n.srv, err = NewServer(Config{
		ListenAddresses: []string{sharedTestIP + ":0", acmeTestIP + ":0", betaTestIP + ":0"},
		Directory:       backend,
		HostKeys:        backend,
		Sessions:        backend,
		Logger:          slog.New(slog.NewTextHandler(n.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.dir.OnDedicatedIPsChange(func() { n.srv.DedicatedIPsChanged() })
	if err := n.srv.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range n.srv.Addrs() {
		host, _, _ := net.SplitHostPort(a.String())
		n.at[host] = a.String()
	}
	served, listened, heard := make(chan error, 1), make(chan struct{}), make(chan struct{})
	go func() { served <- n.srv.ListenAndServe(ctx) }()
	go func() {
		defer close(listened)
		_ = n.dir.Listen(ctx, url, slog.New(slog.DiscardHandler))
	}()
	accessLog := &logBuffer{}
	go func() {
		defer close(heard)
		_ = backend.ListenAccess(ctx, url, slog.New(slog.NewTextHandler(accessLog, nil)))
	}()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		n.srv.Shutdown(sctx)
		cancel()
		<-served
		<-listened
		<-heard
		if t.Failed() {
			t.Logf("node log:\n%s", n.logs.String())
		}
	})
	testkit.Eventually(t, "the node's notification connection to listen", n.dir.ListeningForDedicatedIPs)
	testkit.Eventually(t, "the node to listen for access changes", func() bool {
		return strings.Contains(accessLog.String(), "listening for changes")
	})
	return n
}

// liveSession is a logged-in SFTP client.
type liveSession struct {
	name   string
	sftp   *pkgsftp.Client
	closed chan struct{} // closed when the SSH connection ends
}

// session logs login in on the node's listener at ip and checks it works.
func (f *dedicatedFixture) session(n *dedicatedNode, name, ip, login string) *liveSession {
	f.t.Helper()
	return f.sessionWith(n, name, ip, login, ssh.Password(f.password))
}

// sessionWith logs login in with auth on the node's listener at ip and checks it works.
func (f *dedicatedFixture) sessionWith(n *dedicatedNode, name, ip, login string, auth ssh.AuthMethod) *liveSession {
	f.t.Helper()
	cfg, _ := clientConfig(login, auth)
	c, err := dial(f.t, n.at[ip], cfg)
	if err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	s := &liveSession{name: name, sftp: mustSFTP(f.t, c), closed: make(chan struct{})}
	go func() {
		c.Wait()
		close(s.closed)
	}()
	if _, err := s.sftp.ReadDir("/My Files"); err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	return s
}

// ends checks that the client sees its connection close within limit.
// endsWithin bounds the wait for a withdrawn session to end. An idle session
// on another node ends only when its node hears of the change (a
// notification, or its own copy's refresh), which takes moments; nothing
// else would end it before the idle timeout (15 minutes), so a generous
// bound proves as much on a loaded machine.
const endsWithin = 10 * time.Second

func (s *liveSession) ends(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case <-s.closed:
		if _, err := s.sftp.ReadDir("/My Files"); err == nil {
			t.Errorf("%s: still works after its connection closed", s.name)
		}
	case <-time.After(limit):
		t.Errorf("%s: still connected %v after the release", s.name, limit)
	}
}

// works checks that the session is still connected and serves.
func (s *liveSession) works(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
		t.Errorf("%s: its connection closed", s.name)
		return
	default:
	}
	if _, err := s.sftp.ReadDir("/My Files"); err != nil {
		t.Errorf("%s: %v", s.name, err)
	}
}

// Releasing Acme's dedicated IP ends, on every node, the sessions logged
// in through it; Beta's sessions on its own IP and Acme's on the shared
// address go on.
func TestReleasingDedicatedIPEndsItsSessions(t *testing.T) {
	f := newDedicatedFixture(t)
	first, second := f.node(), f.node()
	f.changedOnFirstNode = first.dir.DedicatedIPsChanged // as skiff serve wires the service

	type nodeSessions struct{ dedicated, shared, other *liveSession }
	open := func(n *dedicatedNode, name string) nodeSessions {
		return nodeSessions{
			dedicated: f.session(n, name+": Acme's user on Acme's IP", acmeTestIP, f.uma),
			shared:    f.session(n, name+": Acme's user on the shared address", sharedTestIP, f.uma),
			other:     f.session(n, name+": Beta's user on Beta's IP", betaTestIP, f.ben),
		}
	}
	onFirst, onSecond := open(first, "first node"), open(second, "second node")

	if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, f.acme); err != nil {
		t.Fatal(err)
	}
	// The node that released it has ended them by the time the release
	// returns (the client sees it moments later); the other hears of it.
	onFirst.dedicated.ends(t, endsWithin)
	onSecond.dedicated.ends(t, endsWithin)
	for _, s := range []*liveSession{onFirst.shared, onFirst.other, onSecond.shared, onSecond.other} {
		s.works(t)
	}
	// The server logs the close after the client has seen it.
	const released = `reason="dedicated IP released or reassigned"`
	for _, n := range []*dedicatedNode{first, second} {
		testkit.Eventually(t, "the release's close to be logged", func() bool { return strings.Contains(n.logs.String(), released) })
		if logs := n.logs.String(); strings.Count(logs, released) != 1 {
			t.Errorf("want one connection closed for the release in the log:\n%s", logs)
		}
	}

	// Acme's user may log in on the released address by login ID; that
	// connection was never routed to Acme and outlives Beta's next change.
	late := f.session(second, "Acme's user on the released address", acmeTestIP, f.uma)
	if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, f.beta); err != nil {
		t.Fatal(err)
	}
	onSecond.other.ends(t, endsWithin)
	late.works(t)
	onSecond.shared.works(t)
}

// An address given to another account ends the sessions the previous
// account's users opened through it, even when the change is a single
// update heard of through notifications only.
func TestReassignedDedicatedIPEndsItsSessions(t *testing.T) {
	f := newDedicatedFixture(t)
	n := f.node()
	acme := f.session(n, "Acme's user on Acme's IP", acmeTestIP, f.uma)
	beta := f.session(n, "Beta's user on Beta's IP", betaTestIP, f.ben)
	// Made in SQL, as an operator might, in one transaction: Beta's address
	// is released and Acme's given to Beta.
	err := f.db.CrossTenant(context.Background(), tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`UPDATE dedicated_ips SET released_at = now() WHERE account_id = $1 AND released_at IS NULL`, f.beta); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE dedicated_ips SET account_id = $1 WHERE address = $2::inet`, f.beta, acmeTestIP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	acme.ends(t, endsWithin)
	beta.ends(t, endsWithin)
}

// An address given to an account serves only that account: a session
// another account's user opened on it by login ID while it was free ends
// when it is provisioned; that account's own sessions elsewhere go on.
func TestProvisionedAddressEndsOtherAccountsSessions(t *testing.T) {
	f := newDedicatedFixture(t)
	n := f.node()
	f.changedOnFirstNode = n.dir.DedicatedIPsChanged
	f.releaseBoth(n)
	umaThere := f.session(n, "Acme's user on the free address", acmeTestIP, f.uma)
	umaShared := f.session(n, "Acme's user on the shared address", sharedTestIP, f.uma)
	benThere := f.session(n, "Beta's user on the free address", acmeTestIP, f.ben)

	if _, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, f.beta, acmeTestIP); err != nil {
		t.Fatal(err)
	}
	umaThere.ends(t, endsWithin)
	umaShared.works(t)
	benThere.works(t) // its own account's address now
}

// A client shown the shared host keys (the address was free when its
// handshake began) that logs in after the address became an account's
// dedicated IP is refused: its account's address shows other keys. It
// reconnects and is shown them.
func TestAddressProvisionedDuringTheHandshakeRefusesTheLogin(t *testing.T) {
	f := newDedicatedFixture(t)
	n := f.node()
	f.changedOnFirstNode = n.dir.DedicatedIPsChanged
	f.releaseBoth(n)
	addr := netip.MustParseAddr(acmeTestIP)
	cfg, _ := clientConfig(f.ben, ssh.Password(f.password))
	var shown ssh.PublicKey
	cfg.HostKeyCallback = func(_ string, _ net.Addr, key ssh.PublicKey) error {
		shown = key
		// Between the key exchange and the login: the address becomes Beta's.
		if _, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, f.beta, acmeTestIP); err != nil {
			return err
		}
		testkit.Eventually(t, "the node to see the address given", func() bool { return n.dir.DedicatedIPAccount(addr) == f.beta })
		return nil
	}
	// The SSH login completes; the server then closes the connection
	// before it serves anything.
	if c, err := dial(t, n.at[acmeTestIP], cfg); err == nil {
		closed := make(chan struct{})
		go func() { c.Wait(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(endsWithin):
			c.Close()
			t.Fatal("a login with the shared host keys on an address that became its account's dedicated IP was let in")
		}
	}
	testkit.Eventually(t, "the refusal to be logged", func() bool {
		return strings.Contains(n.logs.String(), `reason="dedicated IP released or reassigned"`)
	})
	// Again: shown Beta's own keys, and let in.
	cfg, again := clientConfig(f.ben, ssh.Password(f.password))
	c, err := dial(t, n.at[acmeTestIP], cfg)
	if err != nil {
		t.Fatalf("reconnecting: %v", err)
	}
	c.Close()
	if bytes.Equal((*again).Marshal(), shown.Marshal()) {
		t.Error("the reconnection was shown the shared host key again; want Beta's own")
	}
}

// releaseBoth releases Acme's and Beta's dedicated IPs and waits until n
// sees both addresses free.
func (f *dedicatedFixture) releaseBoth(n *dedicatedNode) {
	f.t.Helper()
	for _, account := range []string{f.acme, f.beta} {
		if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, account); err != nil {
			f.t.Fatal(err)
		}
	}
	testkit.Eventually(f.t, "the node to see both addresses free", func() bool {
		return n.dir.DedicatedIPAccount(netip.MustParseAddr(acmeTestIP)) == "" && n.dir.DedicatedIPAccount(netip.MustParseAddr(betaTestIP)) == ""
	})
}
