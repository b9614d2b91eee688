package sftp

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// TestMain gives the tests that call pgtest.NewDB a throwaway PostgreSQL
// server; the others never start it.
func TestMain(m *testing.M) {
	tenant.UseCheapPasswordHashes() // what the tests check does not depend on the cost
	pgtest.Main(m, s3test.StopShared)
}

// productFixture is the real thing behind the listener: an account with
// the SFTP module active, a user with SFTP on, the tenant directory and
// local storage.
type productFixture struct {
	svc      *domain.Domain
	owner    context.Context
	user     *tenant.User
	login    string // the user's SFTP login ID
	store    fixtureStore
	s3       *s3Fixture // the S3 server, on S3 (SKIFF_TEST_STORAGE=s3)
	srv      *Server
	addr     string
	logs     *logBuffer
	password string
}

func newProductFixture(t *testing.T) *productFixture {
	t.Helper()
	ctx := context.Background()
	db := pgtest.OpenStore(t)
	f := &productFixture{svc: domain.New(db), logs: &logBuffer{}, password: "a long enough password 42"}
	dir := sftplogin.NewDirectory(db)
	// The credentials email lists the host keys, so they must exist first.
	if err := dir.EnsureHostKeys(ctx); err != nil {
		t.Fatal(err)
	}
	staff, err := f.svc.People.CreateStaff(tenant.SystemContext(ctx), "support@skiff.test", "Sam", "staff password 123")
	if err != nil {
		t.Fatal(err)
	}
	staffCtx := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindStaff, ID: staff.ID, Name: staff.Name, Email: staff.Email})
	account, owner, err := f.svc.Accounts.CreateAccount(staffCtx, account.CreateAccountInput{Name: "Acme", OwnerEmail: "olive@acme.test", OwnerName: "Olive"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SFTP.ActivateSFTPModule(staffCtx, account.ID, 5); err != nil {
		t.Fatal(err)
	}
	f.owner = tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindUser, ID: owner.ID, AccountID: owner.AccountID,
		Role: owner.Role, Name: owner.Name, Email: owner.Email})
	f.user, err = f.svc.People.CreateUser(f.owner, people.CreateUserInput{Email: "uma@acme.test", Name: "Uma", Password: f.password, SFTPEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := f.svc.SFTP.SFTPCredentials(f.owner, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.login = creds.Login

	f.store, f.s3, err = openFixtureStore(t, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	backend := &TenantBackend{Directory: dir, Storage: f.store}
	f.srv, err = NewServer(Config{
		ListenAddresses: []string{"127.0.0.2:0"},
		Directory:       backend,
		HostKeys:        backend,
		Sessions:        backend,
		Logger:          slog.New(slog.NewTextHandler(f.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	f.addr = f.srv.Addrs()[0].String()
	f.svc.Sessions = SessionEnder{Server: f.srv}
	served := make(chan error, 1)
	go func() { served <- f.srv.ListenAndServe(ctx) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.srv.Shutdown(ctx)
		<-served
		if t.Failed() {
			t.Logf("server log:\n%s", f.logs.String())
		}
	})
	return f
}

// From credentials to files on disk, through the real directory, vfs and
// storage: password and key logins, the key's "last used", and losing
// access ending the live session.
func TestTenantBackendEndToEnd(t *testing.T) {
	f := newProductFixture(t)

	local := filepath.Join(t.TempDir(), "q3.pdf")
	if err := os.WriteFile(local, []byte("%PDF-1.7 quarterly"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := openSSH{password: f.password}.run(t, f.addr, f.login, `put `+local+` "/My Files/q3.pdf"`, "ls -1 /")
	if err != nil {
		t.Fatalf("password login: %v\n%s", err, out)
	}
	if !strings.Contains(out, "My Files") {
		t.Errorf("the root lacks My Files:\n%s", out)
	}
	home, err := f.store.UserHome(f.user.AccountID, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	if got, err := fs.ReadFile(storage.FS(home), "q3.pdf"); err != nil || string(got) != "%PDF-1.7 quarterly" {
		t.Errorf("stored file = %q, %v", got, err)
	}

	if _, err := (openSSH{password: "wrong"}).run(t, f.addr, f.login, "ls"); err == nil {
		t.Error("wrong password accepted")
	}

	keyPath, signer := writePrivateKey(t, t.TempDir())
	if _, err := f.svc.SFTP.AddSSHKey(f.owner, f.user.ID, "laptop", string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); err != nil {
		t.Fatal(err)
	}
	if out, err := (openSSH{key: keyPath}).run(t, f.addr, f.login, "ls -1 /My\\ Files"); err != nil || !strings.Contains(out, "q3.pdf") {
		t.Fatalf("key login: %v\n%s", err, out)
	}
	userKeys, err := f.svc.SFTP.SSHKeys(f.owner, f.user.ID)
	if err != nil || len(userKeys) != 1 || userKeys[0].LastUsedAt == nil {
		t.Errorf("key after login: %+v, %v; want last used set", userKeys, err)
	}

	// A live session ends when the owner turns the user's SFTP off.
	cfg, _ := clientConfig(f.login, ssh.Password(f.password))
	c, err := dial(t, f.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := mustSFTP(t, c)
	if _, err := sc.ReadDir("/My Files"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SFTP.SetSFTPAccess(f.owner, f.user.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.ReadDir("/My Files"); err == nil {
		t.Error("session still works after SFTP was turned off")
	}
	if _, err := dial(t, f.addr, cfg); err == nil {
		t.Error("login still works after SFTP was turned off")
	}
}

// A call that answers is answered with its own result, every time: the
// deadline's cancellation must not race the answer (it once did, failing
// about every other host-key lookup and login with "context canceled").
func TestBoundedReturnsTheAnswer(t *testing.T) {
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 64 { // callers side by side, so that the scheduler interleaves them
		wg.Go(func() {
			for i := range 10000 {
				v, err := bounded(context.Background(), time.Minute, func(context.Context) (int, error) { return i, nil })
				if err != nil || v != i {
					if failed.Add(1) == 1 {
						t.Errorf("call %d: %d, %v", i, v, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 640000 calls lost their answer", n)
	}
}

// A call that does not answer in time is abandoned with an error naming
// the deadline; one whose caller gives up returns the caller's reason.
func TestBoundedAbandonsSlowCalls(t *testing.T) {
	release := make(chan struct{}) // a call that ignores its context, as lib/pq's wait for a hung server does
	t.Cleanup(func() { close(release) })
	hang := func(context.Context) (int, error) { <-release; return 0, nil }
	start := time.Now()
	if _, err := bounded(context.Background(), 50*time.Millisecond, hang); err == nil || !strings.Contains(err.Error(), "did not answer within 50ms") {
		t.Fatalf("hung call: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("abandoned after %v", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bounded(ctx, time.Minute, hang); !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("caller gone: %v", err)
	}
}
