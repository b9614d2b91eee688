package domain_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/skiffhq/skiff/tenant"
)

// API logins: 40 parallel guesses count 40, since each attempt is counted
// before its password is hashed; only the first PairLimit are checked.
func TestAPILoginCountsParallelGuesses(t *testing.T) {
	f := newDirectoryFixture(t)
	u, _ := f.sftpUser("uma@acme.test")
	attacker := netip.MustParseAddr("203.0.113.20")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[tenant.Code]int{}
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.People.Login(context.Background(), u.Email, "a parallel guess", attacker)
			mu.Lock()
			codes[tenant.ErrorCode(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	var count int
	if err := f.svc.DB.X.Get(&count, `SELECT failures FROM auth_failures WHERE key = $1`, "email:uma@acme.test"); err != nil {
		t.Fatal(err)
	}
	if count != 40 {
		t.Errorf("40 parallel guesses counted %d", count)
	}
	if codes[tenant.EUnauthenticated] != tenant.PairLimit || codes[tenant.ELimit] != 40-tenant.PairLimit {
		t.Errorf("40 parallel guesses: %v, want %d checked and the rest refused", codes, tenant.PairLimit)
	}
}

// A stranger hammering a victim's login from their address cannot lock the
// victim out: the victim, from another address, logs in with the right
// password (over the API and SFTP), only slowed down.
func TestStrangerCannotLockVictimOut(t *testing.T) {
	f := newDirectoryFixture(t)
	u, login := f.sftpUser("vic@acme.test")
	ctx := context.Background()
	stranger := netip.MustParseAddr("203.0.113.30")
	for range tenant.PairLimit + 5 {
		_, _ = f.svc.People.Login(ctx, u.Email, "a wrong guess", stranger)
		_, _ = f.dir.PasswordLogin(ctx, sharedDest, stranger, login, "a wrong guess")
	}
	if _, err := f.svc.People.Login(ctx, u.Email, sftpPassword, stranger); tenant.ErrorCode(err) != tenant.ELimit {
		t.Errorf("the stranger's address with the right password: %v, want blocked", err)
	}
	if _, err := f.svc.People.Login(ctx, u.Email, sftpPassword, clientAddr); err != nil {
		t.Errorf("the victim's API login while a stranger hammers it: %v", err)
	}
	if _, err := f.dir.PasswordLogin(ctx, sharedDest, clientAddr, login, sftpPassword); err != nil {
		t.Errorf("the victim's SFTP login while a stranger hammers it: %v", err)
	}
}
