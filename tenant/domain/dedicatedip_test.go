package domain_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"golang.org/x/crypto/ssh"
)

func TestDedicatedIPPoolAddresses(t *testing.T) {
	pool := func(specs ...string) (*sftplogin.DedicatedIPPool, error) {
		var ps []netip.Prefix
		for _, s := range specs {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return sftplogin.NewDedicatedIPPool(ps)
	}
	// Blocks and single addresses, overlapping, out of order, one IPv4-mapped.
	p, err := pool("192.0.2.8/30", "192.0.2.1/32", "192.0.2.9/32", "::ffff:192.0.2.20/128", "2001:db8::1/128")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range p.Addrs() {
		got = append(got, a.String())
	}
	want := []string{"192.0.2.1", "192.0.2.8", "192.0.2.9", "192.0.2.10", "192.0.2.11", "192.0.2.20", "2001:db8::1"}
	if !slices.Equal(got, want) {
		t.Errorf("pool = %v, want %v", got, want)
	}
	if !p.Contains(netip.MustParseAddr("192.0.2.10")) || p.Contains(netip.MustParseAddr("192.0.2.12")) {
		t.Error("Contains disagrees with the pool")
	}
	var empty *sftplogin.DedicatedIPPool
	if empty.Len() != 0 || empty.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("a nil pool is not empty")
	}

	if p, err := pool("10.0.0.0/17", "10.1.0.0/17"); err != nil || p.Len() != sftplogin.MaxDedicatedIPPool {
		t.Errorf("a pool of the largest size: %v", err)
	}
	for _, bad := range [][]string{
		{"10.0.0.0/8"},                 // far too many addresses
		{"2001:db8::/64"},              // same, in IPv6
		{"10.0.0.0/16", "10.1.0.1/32"}, // together over the cap
		{"::ffff:10.0.0.0/90"},         // IPv4-mapped, but wider than IPv4
	} {
		if _, err := pool(bad...); err == nil {
			t.Errorf("pool %v accepted", bad)
		}
	}
	if _, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{{}}); err == nil {
		t.Error("an invalid prefix was accepted")
	}
}

// dedicatedFixture is the module fixture with a pool of four addresses, a
// one-day cool-down and real deployment host keys.
type dedicatedFixture struct {
	*moduleFixture
	dir  *sftplogin.Directory
	pool []netip.Addr
}

const testCooldown = 24 * time.Hour

func newDedicatedFixture(t *testing.T) *dedicatedFixture {
	t.Helper()
	f := &dedicatedFixture{moduleFixture: newModuleFixture(t)}
	pool, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{netip.MustParsePrefix("192.0.2.20/30")})
	if err != nil {
		t.Fatal(err)
	}
	f.pool = pool.Addrs()
	f.svc.DedicatedIPs.Config = sftplogin.DedicatedIPConfig{Pool: pool, Cooldown: testCooldown}
	f.dir = &sftplogin.Directory{DB: f.svc.DB, Now: f.svc.Now}
	useRealHostKeys(t, f.dir)
	return f
}

// useRealHostKeys replaces the module fixture's placeholder deployment host
// key with real ones: these tests compare keys.
func useRealHostKeys(t *testing.T, dir *sftplogin.Directory) {
	t.Helper()
	if _, err := dir.DB.X.Exec(`DELETE FROM host_keys`); err != nil {
		t.Fatal(err)
	}
	if err := dir.EnsureHostKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *dedicatedFixture) provision(accountID, address string) *sftplogin.DedicatedIP {
	f.t.Helper()
	ip, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, accountID, address)
	if err != nil {
		f.t.Fatalf("provision %q for %s: %v", address, accountID, err)
	}
	return ip
}

func (f *dedicatedFixture) release(accountID string) {
	f.t.Helper()
	if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, accountID); err != nil {
		f.t.Fatalf("release for %s: %v", accountID, err)
	}
}

func (f *dedicatedFixture) poolState() map[string]*sftplogin.PoolAddress {
	f.t.Helper()
	c, err := f.svc.DedicatedIPs.DedicatedIPPool(f.staff, "", tenant.Page{})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]*sftplogin.PoolAddress{}
	for _, a := range c.Items {
		out[a.Address.String()] = a
	}
	return out
}

func fingerprintsOf(signers []ssh.Signer) []string {
	var out []string
	for _, s := range signers {
		out = append(out, ssh.FingerprintSHA256(s.PublicKey()))
	}
	return out
}

func (f *dedicatedFixture) accountFingerprints(accountID string) []string {
	f.t.Helper()
	fps, err := f.svc.DedicatedIPs.HostKeyFingerprints(f.staff, accountID)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, fp := range fps {
		out = append(out, fp.Fingerprint)
	}
	return out
}

func TestProvisionAndReleaseDedicatedIP(t *testing.T) {
	f := newDedicatedFixture(t)
	a := f.account.ID
	beta, bOwner := f.newAccount("Beta", "bob@beta.test")
	gamma, _ := f.newAccount("Gamma", "gil@gamma.test")
	b, c := beta.ID, gamma.ID
	first, second := f.pool[0].String(), f.pool[1].String()

	// The next free address, with the account's own host keys.
	ip := f.provision(a, "")
	if ip.Address.String() != first || ip.AccountID != a || !ip.ProvisionedAt.Equal(f.now) {
		t.Fatalf("provisioned %+v, want %s now", ip, first)
	}
	aKeys := f.accountFingerprints(a)
	if len(aKeys) != 3 {
		t.Fatalf("account host keys: %v, want Ed25519, ECDSA and RSA", aKeys)
	}
	if got, err := f.svc.DedicatedIPs.DedicatedIP(f.ownerCtx, a); err != nil || got == nil || got.Address != ip.Address {
		t.Errorf("the owner sees %+v, %v", got, err)
	}
	user := f.newUser("uma@acme.test", tenant.RoleUser)
	if _, err := f.svc.DedicatedIPs.DedicatedIP(f.as(user), a); tenant.ErrorCode(err) != tenant.EForbidden {
		t.Errorf("a plain user reads the dedicated IP: %v", err)
	}
	if _, err := f.svc.DedicatedIPs.DedicatedIP(f.as(bOwner), a); tenant.ErrorCode(err) != tenant.ENotFound {
		t.Errorf("another account's owner reads it: %v", err)
	}
	if got, err := f.svc.DedicatedIPs.DedicatedIP(f.as(bOwner), b); err != nil || got != nil {
		t.Errorf("an account without a dedicated IP: %+v, %v", got, err)
	}

	// Refusals.
	_, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, a, second)
	f.wantCode(err, tenant.EConflict, "a second dedicated IP")
	_, err = f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, b, first)
	f.wantCode(err, tenant.EConflict, "another account's address")
	for _, bad := range []string{"192.0.2.99", "not an address", "fe80::1%eth0"} {
		_, err = f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, b, bad)
		f.wantCode(err, tenant.EInvalid, "address "+bad)
		if tenant.ErrorField(err) != "address" {
			t.Errorf("%s: field %q", bad, tenant.ErrorField(err))
		}
	}
	_, err = f.svc.DedicatedIPs.ProvisionDedicatedIP(f.ownerCtx, a, "")
	f.wantCode(err, tenant.EForbidden, "an owner provisions")
	_, err = f.svc.DedicatedIPs.ReleaseDedicatedIP(f.ownerCtx, a)
	f.wantCode(err, tenant.EForbidden, "an owner releases")
	_, err = f.svc.DedicatedIPs.DedicatedIPPool(f.ownerCtx, "", tenant.Page{})
	f.wantCode(err, tenant.EForbidden, "an owner lists the pool")
	_, err = f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, "5f0e7a3c-0000-4000-8000-000000000000", "")
	f.wantCode(err, tenant.ENotFound, "an unknown account")
	_, err = f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, b)
	f.wantCode(err, tenant.EConflict, "releasing what is not there")

	// Released: it cools down for others, serves B nothing, and comes back to A.
	f.advance(time.Hour)
	f.release(a)
	st := f.poolState()[first]
	if st.State != sftplogin.DedicatedIPCoolingDown || st.AccountID != a || !st.AvailableAt.Equal(f.now.Add(testCooldown)) {
		t.Errorf("released address: %+v", st)
	}
	_, err = f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, b, first)
	f.wantCode(err, tenant.EConflict, "an address cooling down")
	if got := f.provision(b, ""); got.Address.String() != second {
		t.Errorf("B got %s, want the next free %s", got.Address, second)
	}
	if got := f.provision(a, ""); got.Address.String() != first {
		t.Errorf("A got %s back, want %s", got.Address, first)
	}
	if keys := f.accountFingerprints(a); !slices.Equal(keys, aKeys) {
		t.Errorf("re-provisioning changed the host keys: %v, was %v", keys, aKeys)
	}

	// After the cool-down, another account may have it.
	f.release(a)
	f.advance(testCooldown + time.Second)
	if st := f.poolState()[first]; st.State != sftplogin.DedicatedIPFree || st.AccountID != "" {
		t.Errorf("after the cool-down: %+v", st)
	}
	if got := f.provision(c, first); got.Address.String() != first {
		t.Errorf("C got %s", got.Address)
	}
	// A, whose address went to C, gets a free one; then the pool is full.
	if got := f.provision(a, ""); got.Address.String() != f.pool[2].String() {
		t.Errorf("A got %s, want %s", got.Address, f.pool[2])
	}
	delta, _ := f.newAccount("Delta", "dan@delta.test")
	f.provision(delta.ID, "")
	epsilon, _ := f.newAccount("Epsilon", "eve@epsilon.test")
	_, err = f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, epsilon.ID, "")
	f.wantCode(err, tenant.ELimit, "an exhausted pool")

	// The audit trail has every step, with the address.
	var events []string
	if err := f.svc.DB.X.Select(&events, `SELECT kind || ' ' || coalesce(after->>'address', before->>'address')
		FROM audit_events WHERE account_id = $1 AND kind LIKE 'dedicated_ip.%' ORDER BY at`, a); err != nil {
		t.Fatal(err)
	}
	want := []string{"dedicated_ip.provisioned " + first, "dedicated_ip.released " + first, "dedicated_ip.provisioned " + first,
		"dedicated_ip.released " + first, "dedicated_ip.provisioned " + f.pool[2].String()}
	if !slices.Equal(events, want) {
		t.Errorf("audit trail %v, want %v", events, want)
	}
}

func TestDedicatedIPPoolListing(t *testing.T) {
	f := newDedicatedFixture(t)
	beta, _ := f.newAccount("Beta", "bob@beta.test")
	b := beta.ID
	f.provision(f.account.ID, f.pool[1].String())
	f.provision(b, f.pool[3].String())
	f.release(b)

	// Pages of two, in address order.
	var got []string
	after := ""
	for range 3 {
		c, err := f.svc.DedicatedIPs.DedicatedIPPool(f.staff, "", tenant.Page{First: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range c.Items {
			got = append(got, a.Address.String()+" "+string(a.State)+" "+a.AccountID)
		}
		if !c.HasNext {
			break
		}
		after = c.Cursors[len(c.Cursors)-1]
	}
	want := []string{
		f.pool[0].String() + " FREE ",
		f.pool[1].String() + " ASSIGNED " + f.account.ID,
		f.pool[2].String() + " FREE ",
		f.pool[3].String() + " COOLING_DOWN " + b,
	}
	if !slices.Equal(got, want) {
		t.Errorf("pool pages:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	free, err := f.svc.DedicatedIPs.DedicatedIPPool(f.staff, sftplogin.DedicatedIPFree, tenant.Page{})
	if err != nil || len(free.Items) != 2 {
		t.Errorf("free addresses: %+v, %v", free, err)
	}
	_, err = f.svc.DedicatedIPs.DedicatedIPPool(f.staff, "TAKEN", tenant.Page{})
	f.wantCode(err, tenant.EInvalid, "an unknown state")
	_, err = f.svc.DedicatedIPs.DedicatedIPPool(f.staff, "", tenant.Page{After: "garbage"})
	f.wantCode(err, tenant.EInvalid, "a bad cursor")

	// The deployment drops an address an account still has: it stays
	// listed, marked as out of the pool, and keeps working.
	smaller, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{netip.PrefixFrom(f.pool[0], 32)})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.DedicatedIPs.Config.Pool = smaller
	st := f.poolState()
	if len(st) != 2 || st[f.pool[1].String()] == nil || st[f.pool[1].String()].InPool || !st[f.pool[0].String()].InPool {
		t.Errorf("after shrinking the pool: %+v", st)
	}
}

// dedicatedDirectoryFixture adds a second account, Beta, to the directory
// fixture, each with a dedicated IP and a user whose custom login is
// "backup", and a key for Acme's.
type dedicatedDirectoryFixture struct {
	*directoryFixture
	ipA, ipB       netip.Addr
	userA, userB   *tenant.User
	loginA, loginB string
	beta           *tenant.Account
	betaOwnerCtx   context.Context
	keyA           ssh.PublicKey
}

func newDedicatedDirectoryFixture(t *testing.T) *dedicatedDirectoryFixture {
	t.Helper()
	f := &dedicatedDirectoryFixture{directoryFixture: newDirectoryFixture(t)}
	useRealHostKeys(t, f.dir)
	f.ipA, f.ipB = netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	pool, err := sftplogin.NewDedicatedIPPool([]netip.Prefix{netip.MustParsePrefix("127.0.0.2/31")})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.DedicatedIPs.Config = sftplogin.DedicatedIPConfig{Pool: pool}
	var owner *tenant.User
	f.beta, owner = f.newAccount("Beta", "bob@beta.test")
	if _, err := f.svc.SFTP.ActivateSFTPModule(f.staff, f.beta.ID, 5); err != nil {
		t.Fatal(err)
	}
	f.betaOwnerCtx = f.as(owner)
	for _, p := range []struct{ account, addr string }{{f.account.ID, "127.0.0.2"}, {f.beta.ID, "127.0.0.3"}} {
		if _, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, p.account, p.addr); err != nil {
			t.Fatal(err)
		}
	}
	f.userA, f.loginA = f.sftpUser("uma@acme.test")
	f.userB, f.loginB = f.sftpUserIn(f.betaOwnerCtx, "ben@beta.test")
	for _, u := range []struct {
		ctx context.Context
		id  string
	}{{f.ownerCtx, f.userA.ID}, {f.betaOwnerCtx, f.userB.ID}} {
		if _, err := f.svc.SFTP.SetCustomSFTPLogin(u.ctx, u.id, "Backup"); err != nil {
			t.Fatal(err)
		}
	}
	f.keyA = testkit.Ed25519Key(t)
	if _, err := f.svc.SFTP.AddSSHKey(f.ownerCtx, f.userA.ID, "laptop", testkit.AuthorizedKey(f.keyA, "")); err != nil {
		t.Fatal(err)
	}
	return f
}

// sftpUserIn is sftpUser in the account of the owner ctx acts as.
func (f *dedicatedDirectoryFixture) sftpUserIn(ownerCtx context.Context, email string) (*tenant.User, string) {
	f.t.Helper()
	u, err := f.svc.People.CreateUser(ownerCtx, people.CreateUserInput{Email: email, Name: "Ben", Password: sftpPassword, SFTPEnabled: true})
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := f.svc.SFTP.SFTPCredentials(ownerCtx, u.ID)
	if err != nil || c == nil {
		f.t.Fatalf("credentials of %s: %v, %v", email, c, err)
	}
	return u, c.Login
}

// newClient returns another client address each time, so that the refusals
// a test provokes on purpose are not throttled as one client's guessing.
func newClient() func() netip.Addr {
	next := netip.MustParseAddr("198.51.100.0")
	return func() netip.Addr {
		next = next.Next()
		return next
	}
}

func TestDirectoryRoutesByDedicatedIP(t *testing.T) {
	f := newDedicatedDirectoryFixture(t)
	ctx := context.Background()
	client := newClient()
	mapped := netip.AddrFrom16(f.ipA.As16()) // ::ffff:127.0.0.2, as a dual-stack socket reports it

	for _, tt := range []struct {
		name  string
		dest  netip.Addr
		login string
		want  *tenant.User
	}{
		{"custom login on Acme's IP", f.ipA, "backup", f.userA},
		{"custom login in another case", f.ipA, "BACKUP", f.userA},
		{"the same custom login on Beta's IP", f.ipB, "backup", f.userB},
		{"custom login through an IPv4-mapped destination", mapped, "backup", f.userA},
		{"login ID on its account's IP", f.ipA, f.loginA, f.userA},
		{"login ID on a shared address", sharedDest, f.loginA, f.userA},
		{"login ID with no known destination", netip.Addr{}, f.loginB, f.userB},
		{"custom login on a shared address", sharedDest, "backup", nil},
		{"custom login with no known destination", netip.Addr{}, "backup", nil},
		{"Acme's login ID on Beta's IP", f.ipB, f.loginA, nil},
		{"Beta's login ID on Acme's IP", f.ipA, f.loginB, nil},
	} {
		before := f.verifications.Load()
		l, err := f.dir.PasswordLogin(ctx, tt.dest, client(), tt.login, sftpPassword)
		if n := f.verifications.Load() - before; n != 1 {
			t.Errorf("%s: %d password verifications, want 1", tt.name, n)
		}
		if tt.want == nil {
			wantLoginFailed(t, err, tt.name)
			// Indistinguishable from a login that does not exist at all.
			if err != nil && !strings.HasSuffix(err.Error(), "unknown login") {
				t.Errorf("%s: refused as %q, want as an unknown login", tt.name, err)
			}
			continue
		}
		if err != nil || l.UserID != tt.want.ID || l.AccountID != tt.want.AccountID {
			t.Errorf("%s: %+v, %v; want %s", tt.name, l, err, tt.want.Email)
			continue
		}
		// Logs name the user by their login ID, whatever they typed.
		if want := map[string]string{f.userA.ID: f.loginA, f.userB.ID: f.loginB}[l.UserID]; l.Login != want {
			t.Errorf("%s: Login %q, want the ID %q", tt.name, l.Login, want)
		}
	}

	// Keys follow the same routing: Acme's key works with "backup" on
	// Acme's IP only.
	if l, err := f.dir.PublicKeyLogin(ctx, f.ipA, clientAddr, "backup", f.keyA); err != nil || l.UserID != f.userA.ID || l.KeyID == "" {
		t.Errorf("key login with the custom login: %+v, %v", l, err)
	}
	_, err := f.dir.PublicKeyLogin(ctx, f.ipB, clientAddr, "backup", f.keyA)
	wantLoginFailed(t, err, "Acme's key for Beta's backup")
	_, err = f.dir.PublicKeyLogin(ctx, f.ipB, clientAddr, f.loginA, f.keyA)
	wantLoginFailed(t, err, "Acme's key and ID on Beta's IP")

	// Released: Acme's IP serves like a shared address at once.
	if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, f.account.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.dir.PasswordLogin(ctx, f.ipA, client(), "backup", sftpPassword)
	wantLoginFailed(t, err, "custom login after the release")
	if l, err := f.dir.PasswordLogin(ctx, f.ipA, client(), f.loginB, sftpPassword); err != nil || l.UserID != f.userB.ID {
		t.Errorf("any account's ID on a released IP: %+v, %v", l, err)
	}
	// Provisioned again: the kept custom login works again.
	if _, err := f.svc.DedicatedIPs.ProvisionDedicatedIP(f.staff, f.account.ID, ""); err != nil {
		t.Fatal(err)
	}
	if l, err := f.dir.PasswordLogin(ctx, f.ipA, client(), "backup", sftpPassword); err != nil || l.UserID != f.userA.ID {
		t.Errorf("custom login after re-provisioning: %+v, %v", l, err)
	}
}

// Guessing one account's "backup" must not block another account's
// "backup": custom logins are throttled per dedicated IP, login IDs
// everywhere at once.
func TestCustomLoginThrottledPerDedicatedIP(t *testing.T) {
	f := newDedicatedDirectoryFixture(t)
	ctx := context.Background()
	guesser := netip.MustParseAddr("203.0.113.77")
	guess := func(dest netip.Addr, login string) {
		t.Helper()
		for range tenant.PairLimit + 1 {
			_, err := f.dir.PasswordLogin(ctx, dest, guesser, login, "a wrong guess")
			wantLoginFailed(t, err, "a wrong guess")
		}
	}
	guess(f.ipA, "backup")
	guess(sharedDest, "backup")
	if _, err := f.dir.PasswordLogin(ctx, f.ipA, guesser, "backup", sftpPassword); err == nil || !strings.Contains(err.Error(), "too many failed logins") {
		t.Errorf("Acme's backup after the guesses: %v, want throttled", err)
	}
	if l, err := f.dir.PasswordLogin(ctx, f.ipB, guesser, "backup", sftpPassword); err != nil || l.UserID != f.userB.ID {
		t.Errorf("Beta's backup after guesses at Acme's: %+v, %v", l, err)
	}
	// A login ID's guesses count on every address.
	guess(f.ipB, f.loginA)
	if _, err := f.dir.PasswordLogin(ctx, sharedDest, guesser, f.loginA, sftpPassword); err == nil || !strings.Contains(err.Error(), "too many failed logins") {
		t.Errorf("Acme's login ID after guesses on Beta's IP: %v, want throttled", err)
	}
}

func TestHostKeysPerDedicatedIP(t *testing.T) {
	f := newDedicatedDirectoryFixture(t)
	ctx := context.Background()
	keysAt := func(dest netip.Addr) []string {
		t.Helper()
		signers, err := f.dir.HostKeys(ctx, dest)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, s := range signers {
			types = append(types, s.PublicKey().Type())
		}
		if want := []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"}; !slices.Equal(types, want) {
			t.Errorf("key types at %v: %v, want %v", dest, types, want)
		}
		return fingerprintsOf(signers)
	}
	fingerprints := func(accountID string) []string {
		t.Helper()
		fps, err := f.svc.DedicatedIPs.HostKeyFingerprints(f.staff, accountID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, fp := range fps {
			out = append(out, fp.Fingerprint)
		}
		return out
	}
	deployment, acme, beta := fingerprints(""), fingerprints(f.account.ID), fingerprints(f.beta.ID)
	if slices.Equal(acme, beta) || slices.Equal(acme, deployment) {
		t.Fatalf("accounts share keys: deployment %v, Acme %v, Beta %v", deployment, acme, beta)
	}
	for _, tt := range []struct {
		name string
		dest netip.Addr
		want []string
	}{
		{"Acme's IP", f.ipA, acme},
		{"Beta's IP", f.ipB, beta},
		{"Acme's IP again (cached)", f.ipA, acme},
		{"a shared address", sharedDest, deployment},
		{"no known destination", netip.Addr{}, deployment},
	} {
		if got := keysAt(tt.dest); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// The RSA key of an account signs with SHA-2 only, like the deployment's.
	signers, err := f.dir.HostKeys(ctx, f.ipA)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := signers[2].(ssh.MultiAlgorithmSigner); !ok || slices.Contains(m.Algorithms(), ssh.KeyAlgoRSA) {
		t.Error("the account's RSA host key may sign with SHA-1")
	}

	if _, err := f.svc.DedicatedIPs.ReleaseDedicatedIP(f.staff, f.account.ID); err != nil {
		t.Fatal(err)
	}
	if got := keysAt(f.ipA); !slices.Equal(got, deployment) {
		t.Errorf("after the release, Acme's IP presents %v, want the deployment's %v", got, deployment)
	}
}

// Row-level security keeps dedicated IPs apart too: an account reads only
// its own rows and writes none; the directory reads but never writes.
func TestDedicatedIPsRowLevelSecurity(t *testing.T) {
	f := newDedicatedFixture(t)
	beta, _ := f.newAccount("Beta", "bob@beta.test")
	f.provision(f.account.ID, "")
	ctx := context.Background()
	count := func(run func(fn func(tx *sqlx.Tx) error) error) int {
		t.Helper()
		var n int
		if err := run(func(tx *sqlx.Tx) error {
			return tx.GetContext(ctx, &n, `SELECT count(*) FROM dedicated_ips`)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	inAccount := func(id string) func(fn func(tx *sqlx.Tx) error) error {
		return func(fn func(tx *sqlx.Tx) error) error { return f.svc.DB.InAccount(ctx, id, fn) }
	}
	directory := func(fn func(tx *sqlx.Tx) error) error { return f.svc.DB.CrossTenant(ctx, tenant.ScopeDirectory, fn) }
	if a, b, d := count(inAccount(f.account.ID)), count(inAccount(beta.ID)), count(directory); a != 1 || b != 0 || d != 1 {
		t.Errorf("rows seen: Acme %d, Beta %d, directory %d; want 1, 0, 1", a, b, d)
	}
	for name, run := range map[string]func(fn func(tx *sqlx.Tx) error) error{
		"Acme": inAccount(f.account.ID), "Beta": inAccount(beta.ID), "the directory": directory,
	} {
		var released int64
		err := run(func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE dedicated_ips SET released_at = now()`)
			if err == nil {
				released, err = res.RowsAffected()
			}
			return err
		})
		if err == nil && released != 0 {
			t.Errorf("%s released %d dedicated IPs", name, released)
		}
		err = run(func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO dedicated_ips (address, account_id, provisioned_at)
				VALUES ('192.0.2.23', $1, now())`, beta.ID)
			return err
		})
		if err == nil {
			t.Errorf("%s provisioned a dedicated IP", name)
		}
	}
	if ip, err := f.svc.DedicatedIPs.DedicatedIP(f.ownerCtx, f.account.ID); err != nil || ip == nil {
		t.Errorf("Acme's dedicated IP after the attempts: %+v, %v", ip, err)
	}
}
