package domain_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"golang.org/x/crypto/ssh"
)

const sftpPassword = "correct horse battery"

var (
	sharedDest = netip.MustParseAddr("192.0.2.10")
	clientAddr = netip.MustParseAddr("198.51.100.7")
)

// directoryFixture is an account with the SFTP module active, a Directory
// on the same database and clock, and a count of password verifications.
type directoryFixture struct {
	*moduleFixture
	dir           *sftplogin.Directory
	verifications atomic.Int32
}

func newDirectoryFixture(t *testing.T) *directoryFixture {
	t.Helper()
	f := &directoryFixture{moduleFixture: newModuleFixture(t)}
	f.activate(10)
	f.dir = &sftplogin.Directory{DB: f.svc.DB, Now: f.svc.Now}
	f.dir.VerifyPassword = func(ctx context.Context, hash, password string) (bool, error) {
		f.verifications.Add(1)
		return tenant.VerifyPassword(ctx, hash, password)
	}
	return f
}

// sftpUser creates a user with a password and SFTP on, and returns them with
// their login ID.
func (f *directoryFixture) sftpUser(email string) (*tenant.User, string) {
	f.t.Helper()
	u, err := f.svc.People.CreateUser(f.ownerCtx, people.CreateUserInput{Email: email, Name: strings.Split(email, "@")[0], Password: sftpPassword, SFTPEnabled: true})
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, u.ID)
	if err != nil || c == nil {
		f.t.Fatalf("credentials of %s: %v, %v", email, c, err)
	}
	return u, c.Login
}

// setModule puts the account's module in a state directly, as the database
// owner: the states' transitions are the module service's tests.
func (f *directoryFixture) setModule(status string, trialEndsAt *time.Time) {
	f.t.Helper()
	if _, err := f.svc.DB.X.Exec(`UPDATE accounts SET sftp_status = $2, sftp_trial_ends_at = $3 WHERE id = $1`,
		f.account.ID, status, trialEndsAt); err != nil {
		f.t.Fatal(err)
	}
}

// wantLoginFailed checks that err is the uniform refusal: a client learns
// nothing from it but "login failed", whatever the reason.
func wantLoginFailed(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, sftplogin.ErrLoginFailed) || tenant.ErrorCode(err) != tenant.EUnauthenticated || tenant.ErrorMessage(err) != "login failed" {
		t.Errorf("%s: got %v, want the uniform login failure", what, err)
	}
}

func TestPasswordLogin(t *testing.T) {
	f := newDirectoryFixture(t)
	uma, umaLogin := f.sftpUser("uma@acme.test")
	_, vicLogin := f.sftpUser("vic@acme.test")
	gone, goneLogin := f.sftpUser("gone@acme.test")
	if _, err := f.svc.People.DeleteUser(f.ownerCtx, gone.ID, false); err != nil {
		t.Fatal(err)
	}
	// A user issued credentials, then turned off.
	off, offLogin := f.sftpUser("off@acme.test")
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, off.ID, false); err != nil {
		t.Fatal(err)
	}
	// A user without a password: only keys can work for them.
	nopw, err := f.svc.People.CreateUser(f.ownerCtx, people.CreateUserInput{Email: "nopw@acme.test", Name: "nopw", SFTPEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	nopwCreds, _ := f.svc.SFTP.SFTPCredentials(f.ownerCtx, nopw.ID)

	attempt := 0
	login := func(login, password string) (*sftplogin.Login, error) {
		t.Helper()
		before := f.verifications.Load()
		// Each attempt from its own address, so throttling stays out of the way.
		attempt++
		from := netip.AddrFrom4([4]byte{198, 51, 100, byte(attempt)})
		l, err := f.dir.PasswordLogin(context.Background(), sharedDest, from, login, password)
		// Every attempt costs one argon2id verification, so timing does not
		// tell an unknown login from a wrong password.
		if n := f.verifications.Load() - before; n != 1 {
			t.Errorf("login %q: %d password verifications, want 1", login, n)
		}
		return l, err
	}

	l, err := login(umaLogin, sftpPassword)
	if err != nil {
		t.Fatalf("uma logs in: %v", err)
	}
	if l.PasswordDigest == "" {
		t.Error("a password login carries no digest of the password for the session gate")
	}
	l.PasswordDigest = ""
	// The address it came from, which the session gate checks against the IP allowlists.
	if *l != (sftplogin.Login{AccountID: f.account.ID, UserID: uma.ID, Login: umaLogin, Remote: netip.AddrFrom4([4]byte{198, 51, 100, byte(attempt)})}) {
		t.Errorf("login = %+v", l)
	}
	if l, err := login(strings.ToUpper(umaLogin), sftpPassword); err != nil || l.UserID != uma.ID {
		t.Errorf("login ID in upper case: %+v, %v", l, err)
	}

	var reasons []string
	for _, tt := range []struct{ name, login, password string }{
		{"wrong password", umaLogin, sftpPassword + "!"},
		{"another user's login", vicLogin, "vic's password is not uma's"},
		{"unknown login", "zzzz-zzzz", sftpPassword},
		{"email as login", "uma@acme.test", sftpPassword},
		{"empty login", "", sftpPassword},
		{"oversized login", strings.Repeat("a", 10000), sftpPassword},
		{"NUL in login", umaLogin + "\x00", sftpPassword},
		{"deleted user", goneLogin, sftpPassword},
		{"SFTP turned off", offLogin, sftpPassword},
		{"no password set", nopwCreds.Login, ""},
	} {
		_, err := login(tt.login, tt.password)
		wantLoginFailed(t, err, tt.name)
		reasons = append(reasons, err.Error())
	}
	// The server log can tell the cases apart.
	if !strings.Contains(reasons[0], "wrong password") || !strings.Contains(reasons[2], "unknown login") ||
		!strings.Contains(reasons[7], "deleted") || !strings.Contains(reasons[8], "SFTP access is off") {
		t.Errorf("refusal reasons for the log: %q", reasons)
	}
}

// Password guessing is blocked per (login, client address) and per address,
// and a blocked attempt costs no hashing; guesses from elsewhere only slow
// the login down, so its owner still gets in.
func TestPasswordLoginThrottling(t *testing.T) {
	f := newDirectoryFixture(t)
	_, umaLogin := f.sftpUser("uma@acme.test")
	_, vicLogin := f.sftpUser("vic@acme.test")
	ctx := context.Background()
	attacker := netip.MustParseAddr("203.0.113.9")
	for i := range tenant.PairLimit {
		_, err := f.dir.PasswordLogin(ctx, sharedDest, attacker, umaLogin, "guess "+string(rune('a'+i)))
		wantLoginFailed(t, err, "a guess")
	}
	before := f.verifications.Load()
	// The attacker's address is blocked for uma, even with the right password...
	_, err := f.dir.PasswordLogin(ctx, sharedDest, attacker, umaLogin, sftpPassword)
	wantLoginFailed(t, err, "the right password from the blocked address")
	if !strings.Contains(err.Error(), "too many failed logins") {
		t.Errorf("throttled refusal logs %q", err)
	}
	if n := f.verifications.Load() - before; n != 0 {
		t.Errorf("blocked attempts ran %d password verifications, want none", n)
	}
	// ...but uma, from her own address, gets in, at most slowed down.
	if _, err := f.dir.PasswordLogin(ctx, sharedDest, clientAddr, umaLogin, sftpPassword); err != nil {
		t.Fatalf("uma from her address while an attacker guesses: %v", err)
	}
	// The block ends ThrottleWindow after the pair's last attempt.
	f.advance(tenant.ThrottleWindow + time.Second)
	if _, err := f.dir.PasswordLogin(ctx, sharedDest, attacker, umaLogin, sftpPassword); err != nil {
		t.Fatalf("uma from the once-blocked address after the window: %v", err)
	}
	// An address guessing at many logins is blocked for all of them.
	for i := range tenant.AddressLimit {
		_, err := f.dir.PasswordLogin(ctx, sharedDest, attacker, fmt.Sprintf("nobody-%d", i), "guess")
		wantLoginFailed(t, err, "a guess at another login")
	}
	if _, err := f.dir.PasswordLogin(ctx, sharedDest, attacker, vicLogin, sftpPassword); err == nil || !strings.Contains(err.Error(), "too many failed logins") {
		t.Errorf("vic from the spraying address: %v, want throttled", err)
	}
	if _, err := f.dir.PasswordLogin(ctx, sharedDest, clientAddr, vicLogin, sftpPassword); err != nil {
		t.Errorf("vic from a clean address: %v", err)
	}
}

// Parallel guesses all count: each is counted before the password is hashed.
func TestPasswordLoginCountsParallelGuesses(t *testing.T) {
	f := newDirectoryFixture(t)
	_, umaLogin := f.sftpUser("uma@acme.test")
	attacker := netip.MustParseAddr("203.0.113.10")
	before := f.verifications.Load()
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.dir.PasswordLogin(context.Background(), sharedDest, attacker, umaLogin, "a parallel guess")
			wantLoginFailed(t, err, "a parallel guess")
		}()
	}
	wg.Wait()
	if n := f.verifications.Load() - before; n != tenant.PairLimit {
		t.Errorf("40 parallel guesses ran %d password verifications, want %d", n, tenant.PairLimit)
	}
	var count int
	if err := f.svc.DB.X.Get(&count, `SELECT failures FROM auth_failures WHERE key = $1`, "sftp:"+umaLogin); err != nil {
		t.Fatal(err)
	}
	if count != 40 {
		t.Errorf("40 parallel guesses counted %d", count)
	}
}

func TestLoginFollowsModuleStatus(t *testing.T) {
	f := newDirectoryFixture(t)
	_, login := f.sftpUser("uma@acme.test")
	key := testkit.Ed25519Key(t)
	kim, err := f.svc.People.CreateUser(f.ownerCtx, people.CreateUserInput{Email: "kim@acme.test", Name: "kim", SFTPEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SFTP.AddSSHKey(f.ownerCtx, kim.ID, "Kim's key", testkit.AuthorizedKey(key, "")); err != nil {
		t.Fatal(err)
	}
	kimCreds, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, kim.ID)
	if err != nil {
		t.Fatal(err)
	}
	past, future := f.now.Add(-time.Hour), f.now.Add(time.Hour)
	for _, tt := range []struct {
		status      string
		trialEndsAt *time.Time
		allowed     bool
	}{
		{"ACTIVE", nil, true},
		{"TRIAL", &future, true},
		{"TRIAL", &past, false}, // expired
		{"SUSPENDED", nil, false},
		{"NONE", nil, false},
	} {
		f.setModule(tt.status, tt.trialEndsAt)
		_, perr := f.dir.PasswordLogin(context.Background(), sharedDest, clientAddr, login, sftpPassword)
		_, kerr := f.dir.PublicKeyLogin(context.Background(), sharedDest, clientAddr, kimCreds.Login, key)
		gerr := f.dir.SessionAllowed(context.Background(), f.account.ID, kim.ID, false)
		if tt.allowed {
			if perr != nil || kerr != nil || gerr != nil {
				t.Errorf("module %s: password %v, key %v, session %v; want all allowed", tt.status, perr, kerr, gerr)
			}
			continue
		}
		wantLoginFailed(t, perr, "password login, module "+tt.status)
		wantLoginFailed(t, kerr, "key login, module "+tt.status)
		if !errors.Is(gerr, sftplogin.ErrSFTPAccessWithdrawn) || tenant.ErrorCode(gerr) != tenant.EForbidden {
			t.Errorf("session gate, module %s: got %v, want access withdrawn", tt.status, gerr)
		}
	}
}

func TestPublicKeyLogin(t *testing.T) {
	f := newDirectoryFixture(t)
	uma, umaLogin := f.sftpUser("uma@acme.test")
	vic, vicLogin := f.sftpUser("vic@acme.test")
	umaKey, vicKey, strayKey := testkit.Ed25519Key(t), testkit.ECDSAKey(t, 256), testkit.Ed25519Key(t)
	added, err := f.svc.SFTP.AddSSHKey(f.as(uma), uma.ID, "Laptop", testkit.AuthorizedKey(umaKey, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SFTP.AddSSHKey(f.as(vic), vic.ID, "Desktop", testkit.AuthorizedKey(vicKey, "")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	l, err := f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, umaLogin, umaKey)
	if err != nil {
		t.Fatalf("uma logs in with her key: %v", err)
	}
	want := sftplogin.Login{AccountID: f.account.ID, UserID: uma.ID, Login: umaLogin, KeyID: added.ID, KeyFingerprint: added.Fingerprint, Remote: clientAddr}
	if *l != want {
		t.Errorf("login = %+v, want %+v", l, want)
	}
	// Answering whether a key would do is not a use of the key.
	if keys, _ := f.svc.SFTP.SSHKeys(f.as(uma), uma.ID); keys[0].LastUsedAt != nil {
		t.Errorf("key marked used before the login was proven")
	}

	cert := &ssh.Certificate{Key: umaKey, CertType: ssh.UserCert}
	for _, tt := range []struct {
		name  string
		login string
		key   ssh.PublicKey
	}{
		{"another user's key", umaLogin, vicKey},
		{"own key, other login", vicLogin, umaKey},
		{"unregistered key", umaLogin, strayKey},
		{"unknown login", "zzzz-zzzz", umaKey},
		{"certificate of a registered key", umaLogin, cert},
		{"no key", umaLogin, nil},
	} {
		_, err := f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, tt.login, tt.key)
		wantLoginFailed(t, err, tt.name)
	}

	// Once deleted, the key no longer logs in.
	if _, err := f.svc.SFTP.DeleteSSHKey(f.as(uma), added.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, umaLogin, umaKey)
	wantLoginFailed(t, err, "deleted key")
}

func TestMarkKeyUsed(t *testing.T) {
	f := newDirectoryFixture(t)
	uma, umaLogin := f.sftpUser("uma@acme.test")
	key := testkit.Ed25519Key(t)
	if _, err := f.svc.SFTP.AddSSHKey(f.as(uma), uma.ID, "Laptop", testkit.AuthorizedKey(key, "")); err != nil {
		t.Fatal(err)
	}
	lastUsed := func() *time.Time {
		t.Helper()
		keys, err := f.svc.SFTP.SSHKeys(f.as(uma), uma.ID)
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys: %v, %v", keys, err)
		}
		return keys[0].LastUsedAt
	}
	ctx := context.Background()
	// login logs in with the key as the SSH server does, and returns how many
	// transactions recording the use took.
	login := func() int64 {
		t.Helper()
		l, err := f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, umaLogin, key)
		if err != nil {
			t.Fatal(err)
		}
		before := f.svc.DB.Transactions()
		if err := f.dir.MarkKeyUsed(ctx, l); err != nil {
			t.Fatal(err)
		}
		return f.svc.DB.Transactions() - before
	}
	first := f.now
	login()
	if got := lastUsed(); got == nil || !got.Equal(first) {
		t.Fatalf("last used = %v, want %v", got, first)
	}
	// Busy clients do not write on every connection, nor even ask...
	f.advance(10 * time.Second)
	if n := login(); n != 0 {
		t.Errorf("a login 10 s after the last one took %d transactions to record, want none", n)
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("last used moved to %v within a minute", got)
	}
	// ...but the time stays within a minute of the truth.
	f.advance(time.Minute)
	login()
	if got := lastUsed(); !got.Equal(f.now) {
		t.Errorf("last used = %v, want %v", got, f.now)
	}
	// Another account's ID does not reach the key; junk is no error.
	l, err := f.dir.PublicKeyLogin(ctx, sharedDest, clientAddr, umaLogin, key)
	if err != nil {
		t.Fatal(err)
	}
	_, other := f.newAccount("Globex", "gus@globex.test")
	f.advance(time.Hour)
	if err := f.dir.MarkKeyUsed(ctx, &sftplogin.Login{AccountID: other.AccountID, KeyID: l.KeyID}); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); got.Equal(f.now) {
		t.Errorf("marked through another account's ID")
	}
	if err := f.dir.MarkKeyUsed(ctx, &sftplogin.Login{AccountID: "junk", KeyID: "junk"}); err != nil {
		t.Errorf("junk IDs: %v", err)
	}
}

func TestSessionAllowed(t *testing.T) {
	f := newDirectoryFixture(t)
	uma, _ := f.sftpUser("uma@acme.test")
	ctx := context.Background()
	if err := f.dir.SessionAllowed(ctx, f.account.ID, uma.ID, false); err != nil {
		t.Fatalf("uma's session: %v", err)
	}
	// The user must be in the account the session was opened for.
	_, other := f.newAccount("Globex", "gus@globex.test")
	if err := f.dir.SessionAllowed(ctx, other.AccountID, uma.ID, false); !errors.Is(err, sftplogin.ErrSFTPAccessWithdrawn) {
		t.Errorf("uma checked against another account: got %v, want access withdrawn", err)
	}
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, uma.ID, false); err != nil {
		t.Fatal(err)
	}
	err := f.dir.SessionAllowed(ctx, f.account.ID, uma.ID, false)
	if !errors.Is(err, sftplogin.ErrSFTPAccessWithdrawn) || !strings.Contains(err.Error(), "SFTP access is off") {
		t.Errorf("after SFTP is turned off: got %v, want access withdrawn", err)
	}
	if _, err := f.svc.SFTP.SetSFTPAccess(f.ownerCtx, uma.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := f.dir.SessionAllowed(ctx, f.account.ID, uma.ID, false); err != nil {
		t.Errorf("after SFTP is turned back on: %v", err)
	}
	if _, err := f.svc.People.DeleteUser(f.ownerCtx, uma.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := f.dir.SessionAllowed(ctx, f.account.ID, uma.ID, false); !errors.Is(err, sftplogin.ErrSFTPAccessWithdrawn) {
		t.Errorf("after the user is deleted: got %v, want access withdrawn", err)
	}
}
