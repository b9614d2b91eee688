package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"github.com/skiffhq/skiff/tenant/sharing"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/tenant"
)

// End-to-end tests: real clients (OpenSSH sftp, curl/libssh2, pkg/sftp over
// x/crypto) against the whole stack — PostgreSQL, sftplogin.Directory, Server,
// vfs and local storage — asserting what a user of those clients notices.

// testClock is a clock tests move by hand, shared by the service and the
// directories of the nodes, so throttling and trial expiry need no sleeping.
type testClock = testkit.Clock

// e2e is the product fixture (node A: its server ends sessions through
// Server.Disconnect) with a hand-moved clock and more nodes on the same
// database and storage.
type e2e struct {
	*productFixture
	clock *testClock
	home  string // the fixture user's home on disk ("" on S3: see readHome and the like)
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	f := newProductFixture(t)
	clock := testkit.NewClock(time.Now())
	f.svc.Now = clock.Now
	home, err := f.store.UserHome(f.user.AccountID, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	home.Close()
	e := &e2e{productFixture: f, clock: clock}
	if lt, ok := home.(*storage.LocalTree); ok {
		e.home = lt.Root().Name()
	}
	return e
}

// openSSHLogin is one way an OpenSSH client logs in as the fixture user.
type openSSHLogin struct {
	name string
	auth openSSH
}

// openSSHLogins gives the fixture user a key and returns both ways to log
// in: with that key, and with the password.
func (e *e2e) openSSHLogins(t *testing.T) []openSSHLogin {
	keyPath, _ := e.newKey(t, e.owner, e.user.ID)
	return []openSSHLogin{
		{"key", openSSH{key: keyPath}},
		{"password", openSSH{password: e.password}},
	}
}

// node is another Skiff SSH listener on the same database and storage, as a
// second machine behind the load balancer would be: the service does not
// reach it through Disconnect, and its directory reads the test clock.
type node struct {
	*Server
	addr string
	logs *logBuffer
}

// startNode starts a node on 127.0.0.2. edit may change its config; wrap
// may wrap its listener.
func (e *e2e) startNode(t *testing.T, edit func(*Config), wrap func(net.Listener) net.Listener) *node {
	t.Helper()
	dir := sftplogin.NewDirectory(e.svc.DB)
	dir.Now = e.clock.Now
	backend := &TenantBackend{Directory: dir, Storage: e.store}
	n := &node{logs: &logBuffer{}}
	cfg := Config{Directory: backend, HostKeys: backend, Sessions: backend, Logger: slog.New(slog.NewTextHandler(n.logs, nil))}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	n.Server, n.addr = srv, ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
		if t.Failed() {
			t.Logf("node log:\n%s", n.logs.String())
		}
	})
	return n
}

// newUser creates a user of the fixture's account with the fixture's
// password and SFTP on, and returns them with their login ID.
func (e *e2e) newUser(t *testing.T, ctx context.Context, name string) (*tenant.User, string) {
	t.Helper()
	u, err := e.svc.People.CreateUser(ctx, people.CreateUserInput{Email: name + "@acme.test", Name: name, Password: e.password, SFTPEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := e.svc.SFTP.SFTPCredentials(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u, creds.Login
}

// newKey adds a fresh Ed25519 key to the user and returns its private key
// file and its ID.
func (e *e2e) newKey(t *testing.T, ctx context.Context, userID string) (string, string) {
	t.Helper()
	path, signer := writePrivateKey(t, t.TempDir())
	k, err := e.svc.SFTP.AddSSHKey(ctx, userID, "laptop", string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err != nil {
		t.Fatal(err)
	}
	return path, k.ID
}

// trialUser creates a second account whose SFTP module is in its free trial
// (by the test clock), with one SFTP user, and returns that user's login.
func (e *e2e) trialUser(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	staff, err := e.svc.People.CreateStaff(tenant.SystemContext(ctx), "trials@skiff.test", "Tia", "staff password 456")
	if err != nil {
		t.Fatal(err)
	}
	staffCtx := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindStaff, ID: staff.ID, Name: staff.Name, Email: staff.Email})
	account, owner, err := e.svc.Accounts.CreateAccount(staffCtx, account.CreateAccountInput{Name: "Trialco", OwnerEmail: "tom@trialco.test", OwnerName: "Tom"})
	if err != nil {
		t.Fatal(err)
	}
	ownerCtx := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindUser, ID: owner.ID, AccountID: account.ID,
		Role: owner.Role, Name: owner.Name, Email: owner.Email})
	if _, err := e.svc.SFTP.StartSFTPTrial(ownerCtx); err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.People.CreateUser(ownerCtx, people.CreateUserInput{Email: "tess@trialco.test", Name: "Tess", Password: e.password, SFTPEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := e.svc.SFTP.SFTPCredentials(ownerCtx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return creds.Login
}

// hostKeyChecker accepts only the host keys listed in the user's SFTP
// credentials, as a careful user compares them on first connection.
func (e *e2e) hostKeyChecker(t *testing.T) ssh.HostKeyCallback {
	t.Helper()
	creds, err := e.svc.SFTP.SFTPCredentials(e.owner, e.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		for _, fp := range creds.HostKeyFingerprints {
			if fp.Fingerprint == ssh.FingerprintSHA256(key) {
				return nil
			}
		}
		return errors.New("host key is not one of the credentials' fingerprints")
	}
}

// sftpClient logs in with the password through x/crypto, checking the host
// key, and opens pkg/sftp's client; both close when the test ends.
func (e *e2e) sftpClient(t *testing.T, addr, login string) (*ssh.Client, *pkgsftp.Client) {
	t.Helper()
	c, err := dial(t, addr, &ssh.ClientConfig{User: login, Auth: []ssh.AuthMethod{ssh.Password(e.password)},
		HostKeyCallback: e.hostKeyChecker(t), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("login as %s: %v", login, err)
	}
	return c, mustSFTP(t, c)
}

// randomFile writes n random bytes to a new local file and returns its path
// and contents.
func randomFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "random.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// fileSum is the SHA-256 of a file, or the error reading it.
func fileSum(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return sum(b)
}

// entries lists a directory on disk, hidden files included.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name())
	}
	return names
}

// openUnder lists this process's open file descriptors that point below dir.
func openUnder(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd to inspect open files")
	}
	var open []string
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil &&
			(target == dir || strings.HasPrefix(target, dir+"/")) {
			open = append(open, target)
		}
	}
	return open
}

// isDenied reports whether an SFTP call failed with "permission denied".
func isDenied(err error) bool {
	var se *pkgsftp.StatusError
	return errors.Is(err, os.ErrPermission) || errors.As(err, &se) && se.FxCode() == pkgsftp.ErrSSHFxPermissionDenied
}

// The everyday session of an OpenSSH user, with a key (batch mode, where
// any failed command fails the run) and with the password: a multi-MiB
// upload and download that arrive intact, and the commands that shape a tree.
func TestE2EOpenSSHSession(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	big, data := randomFile(t, 5<<20+123)
	small := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(small, []byte("draft"), 0o600); err != nil {
		t.Fatal(err)
	}
	written := time.Date(2022, 8, 9, 10, 11, 12, 0, time.UTC)
	if err := os.Chtimes(small, written, written); err != nil {
		t.Fatal(err)
	}

	for _, tc := range e.openSSHLogins(t) {
		t.Run(tc.name, func(t *testing.T) {
			dir := "reports-" + tc.name
			back := filepath.Join(t.TempDir(), "back.bin")
			out, err := tc.auth.run(t, e.addr, e.login,
				"pwd",
				"mkdir "+dir,
				"put "+big+" "+dir+"/data.bin",
				"ls -l "+dir,
				"rename "+dir+"/data.bin "+dir+"/q3.bin",
				"get "+dir+"/q3.bin "+back,
				"put "+small+" notes-"+tc.name+".txt",
				"rm notes-"+tc.name+".txt",
				"put -p "+small+" kept-"+tc.name+".txt",
				"mkdir empty-"+tc.name,
				"rmdir empty-"+tc.name,
				"ls -1 /",
			)
			if err != nil {
				t.Fatalf("sftp: %v\n%s", err, out)
			}
			if !strings.Contains(out, "Remote working directory: /My Files") {
				t.Errorf("the session does not start in /My Files:\n%s", out)
			}
			if !strings.Contains(out, "data.bin") || !strings.Contains(out, " "+strconv.Itoa(len(data))+" ") {
				t.Errorf("ls -l does not show the upload with its size:\n%s", out)
			}
			if !strings.Contains(out, "Projects Shared With Me") {
				t.Errorf("ls / does not show the shared folders' mount point:\n%s", out)
			}
			if got := fileSum(back); got != sum(data) {
				t.Errorf("downloaded file differs: sha256 %s, want %s", got, sum(data))
			}
			if got := e.homeSum(t, dir+"/q3.bin"); got != sum(data) {
				t.Errorf("stored file differs: sha256 %s, want %s", got, sum(data))
			}
			// put -p keeps the file's time (fsetstat before the close).
			if fi, err := e.statHome(t, "kept-"+tc.name+".txt"); err != nil {
				t.Error(err)
			} else if !fi.ModTime().Equal(written) {
				t.Errorf("put -p: stored at %v, want the local file's %v", fi.ModTime(), written)
			}
			for _, gone := range []string{dir + "/data.bin", "notes-" + tc.name + ".txt", "empty-" + tc.name} {
				if _, err := e.statHome(t, gone); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still exists on disk (%v)", gone, err)
				}
			}
		})
	}
}

// stallListener lets the next connection it accepts read only so many
// bytes; then the server's reads wait until the test cuts the connection,
// which the server sees as a client that died mid-transfer. It makes "in
// the middle of an upload" a place rather than a moment.
type stallListener struct {
	net.Listener
	mu      sync.Mutex
	budget  int64           // for the next connection; 0: none
	stalled chan *stallConn // receives each connection as it stalls
}

// stallNext makes the next accepted connection stall after n bytes.
func (l *stallListener) stallNext(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.budget = n
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.budget == 0 {
		return c, nil
	}
	sc := &stallConn{Conn: c, left: l.budget, stalled: l.stalled, cut: make(chan struct{})}
	l.budget = 0
	return sc, nil
}

type stallConn struct {
	net.Conn
	left     int64 // read only by the server's one reading goroutine
	stalled  chan<- *stallConn
	announce sync.Once
	cut      chan struct{}
	cutOnce  sync.Once
}

func (c *stallConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.announce.Do(func() { c.stalled <- c })
		<-c.cut
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	return n, err
}

// Cut drops the connection: the client's side is closed, and the server
// reads end of file, as from a client that was killed.
func (c *stallConn) Cut() {
	c.cutOnce.Do(func() {
		close(c.cut)
		c.Conn.Close()
	})
}

func (c *stallConn) Close() error {
	c.Cut()
	return nil
}

// An upload cut off in the middle: a new file leaves nothing behind (no
// partial file, no hidden temporary file, no open file), while a resumed
// upload keeps what arrived in place, so OpenSSH's reput finishes it.
func TestE2EInterruptedUploads(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	keyPath, _ := e.newKey(t, e.owner, e.user.ID)
	ln := &stallListener{stalled: make(chan *stallConn, 1)}
	n := e.startNode(t, nil, func(l net.Listener) net.Listener { ln.Listener = l; return ln })
	full, data := randomFile(t, 4<<20)
	client := openSSH{key: keyPath}

	// interrupted runs the commands on a connection that stalls after
	// budget bytes, waits until inProgress holds there, cuts it, and waits
	// until the server has let go of the connection.
	interrupted := func(budget int64, what string, inProgress func() bool, commands ...string) {
		t.Helper()
		ln.stallNext(budget)
		done := make(chan error, 1)
		go func() {
			_, err := client.run(t, n.addr, e.login, commands...)
			done <- err
		}()
		var conn *stallConn
		select {
		case conn = <-ln.stalled:
		case err := <-done:
			t.Fatalf("%s: the client finished before the connection stalled: %v", what, err)
		}
		testkit.Eventually(t, what+" in progress", inProgress)
		conn.Cut()
		if err := <-done; err == nil {
			t.Fatalf("%s: the client reports success on a cut connection", what)
		}
		testkit.Eventually(t, "the server to let go of the connection", func() bool { return n.ActiveConnections() == 0 })
	}

	// A new upload: something is being written, then nothing is left. (On
	// S3 the first MiB stays in memory: nothing to see until it is cut.)
	interrupted(1<<20, "new upload", func() bool { return onS3 || len(e.homeEntries(t)) > 0 },
		"put "+full+" new.bin")
	testkit.Eventually(t, "the partial upload to be removed", func() bool { return len(e.homeEntries(t)) == 0 })
	if !onS3 {
		if open := openUnder(t, e.home); len(open) > 0 {
			t.Errorf("files still open after the connection dropped: %v", open)
		}
	}

	// A resumed upload: the first MiB is there; reput is cut off after
	// about 2 MiB more, which stay; a second reput completes the file.
	prefix := filepath.Join(t.TempDir(), "prefix.bin")
	if err := os.WriteFile(prefix, data[:1<<20], 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := client.run(t, n.addr, e.login, "put "+prefix+" big.bin"); err != nil {
		t.Fatalf("upload of the first part: %v\n%s", err, out)
	}
	size := func() int64 {
		fi, err := e.statHome(t, "big.bin")
		if err != nil {
			return -1
		}
		return fi.Size()
	}
	// On S3 what arrives is in memory until the file is closed, so
	// there is nothing to watch while it is in progress.
	interrupted(2<<20, "resumed upload", func() bool { return onS3 || size() > 1<<20 }, "reput "+full+" big.bin")
	kept, err := e.readHome(t, "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) <= 1<<20 || len(kept) >= len(data) || !bytes.Equal(kept, data[:len(kept)]) {
		t.Fatalf("after the cut, big.bin holds %d bytes (matching the source: %v); want the first part plus what arrived",
			len(kept), bytes.Equal(kept, data[:min(len(kept), len(data))]))
	}
	if slices.ContainsFunc(e.homeEntries(t), func(s string) bool { return s != "big.bin" }) {
		t.Errorf("the home holds more than big.bin: %v", e.homeEntries(t))
	}

	back := filepath.Join(t.TempDir(), "back.bin")
	if out, err := client.run(t, n.addr, e.login, "reput "+full+" big.bin", "get big.bin "+back); err != nil {
		t.Fatalf("reput: %v\n%s", err, out)
	}
	if got := fileSum(back); got != sum(data) {
		t.Errorf("after reput, the file's sha256 is %s, want %s", got, sum(data))
	}
}

// Every refused login reads the same in OpenSSH, whatever the reason, and
// each is refused for its real reason (the server log says which).
func TestE2ELoginRefusalsLookAlike(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n := e.startNode(t, nil, nil)
	trial := e.trialUser(t)

	umaKey, _ := e.newKey(t, e.owner, e.user.ID)
	deleted, deletedLogin := e.newUser(t, e.owner, "dana")
	deletedKey, _ := e.newKey(t, e.owner, deleted.ID)
	if _, err := e.svc.People.DeleteUser(e.owner, deleted.ID, false); err != nil {
		t.Fatal(err)
	}
	disabled, disabledLogin := e.newUser(t, e.owner, "sid")
	if _, err := e.svc.SFTP.SetSFTPAccess(e.owner, disabled.ID, false); err != nil {
		t.Fatal(err)
	}
	kim, kimLogin := e.newUser(t, e.owner, "kim")
	kimKey, kimKeyID := e.newKey(t, e.owner, kim.ID)
	if _, err := e.svc.SFTP.DeleteSSHKey(e.owner, kimKeyID); err != nil {
		t.Fatal(err)
	}

	// Each works before it is refused, so the refusal is the point: the
	// trial user logs in now, uma with her key.
	for _, ok := range []struct {
		login string
		auth  openSSH
	}{{trial, openSSH{password: e.password}}, {e.login, openSSH{key: umaKey}}} {
		if out, err := ok.auth.run(t, n.addr, ok.login, "pwd"); err != nil {
			t.Fatalf("%s cannot log in before the test: %v\n%s", ok.login, err, out)
		}
	}

	cases := []struct {
		name   string
		login  string
		auth   openSSH
		reason string // in the server log
		before func()
	}{
		{name: "wrong password", login: e.login, auth: openSSH{password: "not the password"}, reason: "wrong password"},
		{name: "unknown login", login: "zz99-nobody", auth: openSSH{password: e.password}, reason: "unknown login"},
		{name: "deleted user, password", login: deletedLogin, auth: openSSH{password: e.password}, reason: "user is deleted"},
		{name: "deleted user, key", login: deletedLogin, auth: openSSH{key: deletedKey}, reason: "user is deleted"},
		{name: "SFTP turned off", login: disabledLogin, auth: openSSH{password: e.password}, reason: "SFTP access is off"},
		{name: "another user's key", login: e.login, auth: openSSH{key: kimKey}, reason: "is not one of the user's keys"},
		{name: "deleted key", login: kimLogin, auth: openSSH{key: kimKey}, reason: "is not one of the user's keys"},
		{name: "module expired", login: trial, auth: openSSH{password: e.password}, reason: "SFTP module is EXPIRED",
			before: func() { e.clock.Advance(15 * 24 * time.Hour) }},
	}
	var first string
	for _, tc := range cases {
		// Past the failure memory, so no refusal is only the throttle's.
		e.clock.Advance(2 * time.Hour)
		if tc.before != nil {
			tc.before()
		}
		logged := len(n.logs.String())
		out, err := tc.auth.run(t, n.addr, tc.login, "ls")
		if err == nil {
			t.Errorf("%s: login succeeded:\n%s", tc.name, out)
			continue
		}
		i := strings.Index(out, "Permission denied")
		if i < 0 {
			t.Errorf("%s: no \"Permission denied\" in:\n%s", tc.name, out)
			continue
		}
		msg, _, _ := strings.Cut(out[i:], "\n")
		if first == "" {
			first = msg
		} else if msg != first {
			t.Errorf("%s says %q, %s says %q", tc.name, msg, cases[0].name, first)
		}
		if log := n.logs.String()[logged:]; !strings.Contains(log, "login="+tc.login) || !strings.Contains(log, tc.reason) {
			t.Errorf("%s: refused, but the log does not give the reason %q:\n%s", tc.name, tc.reason, log)
		}
	}
	if logs := n.logs.String(); strings.Contains(logs, e.password) || strings.Contains(logs, "not the password") {
		t.Error("a password appears in the server log")
	}
}

// passwordTry logs in once with a password through x/crypto from the
// given local address and reports whether it got in.
func passwordTry(t *testing.T, from, addr, login, password string) bool {
	t.Helper()
	return allowlistTry(t, from, "", addr, login, ssh.Password(password)) == nil
}

// Password guessing from one address is blocked for that login after
// tenant.PairLimit (10) attempts, even with the right password, until the
// window is over; the login's owner, from another address, still gets in.
func TestE2EPasswordThrottle(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n := e.startNode(t, nil, nil)

	for range 10 {
		if passwordTry(t, "127.0.0.3", n.addr, e.login, "guess") {
			t.Fatal("a wrong password got in")
		}
	}
	if passwordTry(t, "127.0.0.3", n.addr, e.login, e.password) {
		t.Error("after 10 failures from an address, the right password got in from it")
	}
	if !strings.Contains(n.logs.String(), "too many failed logins") {
		t.Errorf("the log does not say the login was throttled:\n%s", n.logs.String())
	}
	if !passwordTry(t, "127.0.0.4", n.addr, e.login, e.password) {
		t.Error("the owner of the login, from another address, is locked out by a guesser")
	}
	e.clock.Advance(15*time.Minute + time.Second)
	if !passwordTry(t, "127.0.0.3", n.addr, e.login, e.password) {
		t.Error("the right password is still refused once the window is over")
	}
}

// curl runs curl (libssh2 on Debian 12: no AEAD ciphers, no ETM MACs) and
// returns its combined output.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"--silent", "--show-error"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no known_hosts of the machine
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// curl with the password: list, download and upload under /My Files,
// checking the host key's fingerprint from the credentials; with
// StrictMACs the server turns curl away.
func TestE2ECurl(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	report, data := randomFile(t, 3<<20+5)
	if out, err := (openSSH{password: e.password}).run(t, e.addr, e.login, "put "+report+" report.bin"); err != nil {
		t.Fatalf("setup upload: %v\n%s", err, out)
	}
	url := "sftp://" + e.addr + "/My%20Files/"
	user := e.login + ":" + e.password

	// The host key curl sees is one of the credentials' fingerprints.
	creds, err := e.svc.SFTP.SFTPCredentials(e.owner, e.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	var hostKey string
	for _, fp := range creds.HostKeyFingerprints {
		sha := strings.TrimPrefix(fp.Fingerprint, "SHA256:")
		if out, err := curl(t, "-u", user, "--hostpubsha256", sha, url); err == nil {
			hostKey = sha
			if !strings.Contains(out, "report.bin") {
				t.Errorf("curl's listing lacks report.bin:\n%s", out)
			}
			break
		} else if !strings.Contains(out, "mismatch sha256 fingerprint") {
			t.Fatalf("curl listing: %v\n%s", err, out)
		}
	}
	if hostKey == "" {
		t.Fatal("curl saw none of the host keys of the credentials")
	}
	wrong := sum([]byte("another server"))[:43]
	if out, err := curl(t, "-u", user, "--hostpubsha256", wrong, url); err == nil || !strings.Contains(out, "mismatch sha256 fingerprint") {
		t.Errorf("curl accepted a wrong host key fingerprint: %v\n%s", err, out)
	}

	back := filepath.Join(t.TempDir(), "back.bin")
	if out, err := curl(t, "-u", user, "--hostpubsha256", hostKey, "-o", back, url+"report.bin"); err != nil {
		t.Fatalf("curl download: %v\n%s", err, out)
	}
	if got := fileSum(back); got != sum(data) {
		t.Errorf("curl downloaded sha256 %s, want %s", got, sum(data))
	}
	// With a key instead of the password, and ~ for the start directory.
	keyPath, _ := e.newKey(t, e.owner, e.user.ID)
	if out, err := curl(t, "-u", e.login+":", "--key", keyPath, "--hostpubsha256", hostKey, "sftp://"+e.addr+"/~/"); err != nil || !strings.Contains(out, "report.bin") {
		t.Errorf("curl with a key: %v\n%s", err, out)
	}
	if out, err := curl(t, "-u", user, "--hostpubsha256", hostKey, "-T", report, url+"copy.bin"); err != nil {
		t.Fatalf("curl upload: %v\n%s", err, out)
	}
	if got := e.homeSum(t, "copy.bin"); got != sum(data) {
		t.Errorf("curl uploaded sha256 %s, want %s", got, sum(data))
	}
	// --append adds to the end of an existing file.
	e.writeHome(t, "log.txt", []byte("HEAD-"))
	tail := filepath.Join(t.TempDir(), "tail.txt")
	if err := os.WriteFile(tail, []byte("TAIL"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := curl(t, "-u", user, "--hostpubsha256", hostKey, "--append", "-T", tail, url+"log.txt"); err != nil {
		t.Fatalf("curl --append: %v\n%s", err, out)
	}
	if got, err := e.readHome(t, "log.txt"); string(got) != "HEAD-TAIL" {
		t.Errorf("after curl --append of TAIL to HEAD-, the file holds %q (%v)", got, err)
	}

	// With StrictMACs, libssh2 1.10 finds no MAC in common; OpenSSH still gets in.
	strict := e.startNode(t, func(c *Config) { c.MACs = StrictMACs }, nil)
	out, err := curl(t, "-u", user, "--hostpubsha256", hostKey, "sftp://"+strict.addr+"/My%20Files/")
	if err == nil || !strings.Contains(out, "Unable to exchange encryption keys") {
		t.Errorf("curl on a StrictMACs server: %v\n%s", err, out)
	}
	// curl may exit before the server has logged the failed handshake.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(strict.logs.String(), "no common algorithm") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if logs := strict.logs.String(); !strings.Contains(logs, "no common algorithm") || strings.Contains(logs, "sftp login") {
		t.Errorf("the StrictMACs server's log does not show a failed key exchange alone:\n%s", logs)
	}
	if out, err := (openSSH{password: e.password}).run(t, strict.addr, e.login, "ls -1"); err != nil || !strings.Contains(out, "copy.bin") {
		t.Errorf("OpenSSH on a StrictMACs server: %v\n%s", err, out)
	}
}

// What pkg/sftp's client asks beyond get and put: setstat (times yes, mode
// and owner accepted and ignored, size), statvfs, realpath, rename versus
// posix-rename onto an existing file, writes at an offset, and the path
// rules (no symlinks or over-long names).
func TestE2EPkgSFTPClient(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	_, sc := e.sftpClient(t, e.addr, e.login)
	write := func(name, content string) {
		t.Helper()
		f, err := sc.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := e.readHome(t, name)
		if err != nil {
			return err.Error()
		}
		return string(b)
	}

	// pkg/sftp sends SSH_FXF_APPEND and writes from offset 0: the server
	// puts the writes at the end, as OpenSSH does.
	t.Run("append", func(t *testing.T) {
		write("log.txt", "HEAD-")
		f, err := sc.OpenFile("log.txt", os.O_WRONLY|os.O_APPEND)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("TAIL")); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := read("log.txt"); got != "HEAD-TAIL" {
			t.Errorf("after appending TAIL to HEAD-, the file holds %q", got)
		}
	})

	t.Run("realpath", func(t *testing.T) {
		for in, want := range map[string]string{
			".":                          "/My Files",
			"..":                         "/",
			"a/../b":                     "/My Files/b",
			"/My Files/../../../etc":     "/etc",
			"../Projects Shared With Me": "/Projects Shared With Me",
		} {
			if got, err := sc.RealPath(in); err != nil || got != want {
				t.Errorf("RealPath(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
		if _, err := sc.Stat("/etc/passwd"); err == nil {
			t.Error("/etc/passwd can be stat'ed")
		}
	})

	t.Run("setstat", func(t *testing.T) {
		write("times.txt", "0123456789")
		mtime := time.Date(2020, 2, 29, 12, 30, 45, 0, time.UTC)
		if err := sc.Chtimes("times.txt", mtime.Add(time.Hour), mtime); err != nil {
			t.Fatal(err)
		}
		if fi, err := sc.Stat("times.txt"); err != nil || !fi.ModTime().Equal(mtime) {
			t.Errorf("after Chtimes the client sees %v, %v; want %v", fi.ModTime(), err, mtime)
		}
		if fi, err := e.statHome(t, "times.txt"); err != nil || !fi.ModTime().Equal(mtime) {
			t.Errorf("after Chtimes the stored file's time is %v, %v; want %v", fi.ModTime(), err, mtime)
		}
		if err := sc.Chmod("times.txt", 0o777); err != nil {
			t.Errorf("chmod refused: %v", err)
		}
		if err := sc.Chown("times.txt", 0, 0); err != nil {
			t.Errorf("chown refused: %v", err)
		}
		if fi, err := e.statHome(t, "times.txt"); err != nil || fi.Mode().Perm()&0o117 != 0 {
			t.Errorf("chmod 777 changed the stored file's mode to %v (%v)", fi.Mode(), err)
		}
		if err := sc.Truncate("times.txt", 4); err != nil || read("times.txt") != "0123" {
			t.Errorf("truncate to 4: %v; file holds %q", err, read("times.txt"))
		}
	})

	t.Run("statvfs", func(t *testing.T) {
		space, err := e.store.FreeSpace(e.user.AccountID)
		if err != nil {
			t.Fatal(err)
		}
		vfsStat, err := sc.StatVFS("/My Files")
		if err != nil {
			t.Fatal(err)
		}
		if vfsStat.Blocks != space.Blocks || vfsStat.Frsize != space.BlockSize || vfsStat.Bavail > vfsStat.Blocks || vfsStat.Flag&1 != 0 {
			t.Errorf("statvfs of My Files = %+v; storage reports %+v", vfsStat, space)
		}
		if root, err := sc.StatVFS("/"); err != nil || root.Flag&1 == 0 {
			t.Errorf("statvfs of / = %+v, %v; want read-only", root, err)
		}
	})

	t.Run("rename", func(t *testing.T) {
		write("a.txt", "new")
		write("b.txt", "old")
		if err := sc.Rename("a.txt", "b.txt"); err == nil {
			t.Error("plain rename replaced an existing file")
		}
		if read("b.txt") != "old" {
			t.Errorf("a refused rename changed b.txt to %q", read("b.txt"))
		}
		if err := sc.PosixRename("a.txt", "b.txt"); err != nil {
			t.Fatalf("posix-rename: %v", err)
		}
		if read("b.txt") != "new" {
			t.Errorf("after posix-rename b.txt holds %q, want \"new\"", read("b.txt"))
		}
		if _, err := sc.Stat("a.txt"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a.txt after posix-rename: %v", err)
		}
	})

	t.Run("write at offset", func(t *testing.T) {
		write("resume.txt", "first half, ")
		f, err := sc.OpenFile("resume.txt", os.O_WRONLY)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("second half"), int64(len("first half, "))); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := read("resume.txt"); got != "first half, second half" {
			t.Errorf("after a write at the end, the file holds %q", got)
		}
	})

	t.Run("path rules", func(t *testing.T) {
		write("target.txt", "x")
		if err := sc.Symlink("target.txt", "link"); err == nil {
			t.Error("a symbolic link was created")
		}
		if _, err := e.statHome(t, "link"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a link exists on disk: %v", err)
		}
		for _, name := range []string{strings.Repeat("n", 256)} {
			if _, err := sc.Create(name); err == nil {
				t.Errorf("created %.20q…", name)
			}
		}
		if err := sc.Mkdir("/new top folder"); err == nil {
			t.Error("created a folder next to My Files")
		}
	})
}

// Sessions end when access is withdrawn: at once on the node the change
// reaches through Disconnect, and on another node at the next operation
// once the cached gate answer has expired — for SFTP turned off, the user
// deleted, the trial run out and the user jailed (their session's tree had
// My Files; they must reconnect to the jail).
func TestE2ESessionsEnd(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	b := e.startNode(t, nil, nil)

	// endedOnB waits for the session on node B to refuse an operation, and
	// checks that it said "permission denied" and that the connection ended.
	endedOnB := func(what string, c *ssh.Client, sc *pkgsftp.Client) {
		t.Helper()
		var err error
		testkit.Eventually(t, what+" to end the session on node B", func() bool {
			_, err = sc.ReadDir("/My Files")
			return err != nil
		})
		if !isDenied(err) {
			t.Errorf("%s: node B's session failed with %v, want permission denied", what, err)
		}
		ended := make(chan struct{})
		go func() { c.Wait(); close(ended) }()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: node B kept the connection open", what)
		}
	}

	t.Run("SFTP turned off", func(t *testing.T) {
		u, login := e.newUser(t, e.owner, "sven")
		_, onA := e.sftpClient(t, e.addr, login)
		cB, onB := e.sftpClient(t, b.addr, login)
		for _, sc := range []*pkgsftp.Client{onA, onB} {
			if _, err := sc.ReadDir("/My Files"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.svc.SFTP.SetSFTPAccess(e.owner, u.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := onA.ReadDir("/My Files"); err == nil {
			t.Error("node A's session still works right after SFTP was turned off")
		}
		endedOnB("SFTP turned off", cB, onB)
		if _, err := dial(t, b.addr, &ssh.ClientConfig{User: login, Auth: []ssh.AuthMethod{ssh.Password(e.password)},
			HostKeyCallback: e.hostKeyChecker(t)}); err == nil {
			t.Error("a new login works after SFTP was turned off")
		}
	})

	t.Run("user deleted", func(t *testing.T) {
		u, login := e.newUser(t, e.owner, "della")
		_, onA := e.sftpClient(t, e.addr, login)
		cB, onB := e.sftpClient(t, b.addr, login)
		// An upload in progress on B is discarded, not left half-written.
		f, err := onB.Create("/My Files/half.bin")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.People.DeleteUser(e.owner, u.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := onA.ReadDir("/My Files"); err == nil {
			t.Error("node A's session still works right after the user was deleted")
		}
		endedOnB("user deleted", cB, onB)
		home, err := e.store.UserHome(u.AccountID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer home.Close()
		testkit.Eventually(t, "the cut-off upload to be removed", func() bool {
			if e.s3 != nil {
				return len(e.s3.treeEntries(t, home)) == 0
			}
			return len(entries(t, home.(*storage.LocalTree).Root().Name())) == 0
		})
	})

	t.Run("user jailed", func(t *testing.T) {
		u, login := e.newUser(t, e.owner, "jules")
		_, onA := e.sftpClient(t, e.addr, login)
		cB, onB := e.sftpClient(t, b.addr, login)
		for _, sc := range []*pkgsftp.Client{onA, onB} {
			if _, err := sc.ReadDir("/My Files"); err != nil {
				t.Fatal(err)
			}
		}
		groups, err := e.svc.Sharing.Groups(e.owner, u.AccountID, tenant.Order{}, tenant.Page{})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(groups.Items, func(g *sharing.Group) bool { return g.Builtin == sharing.GroupJailed })
		if _, err := e.svc.Sharing.SetUserGroup(e.owner, u.ID, groups.Items[i].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := onA.ReadDir("/My Files"); err == nil {
			t.Error("node A's session still works right after the user was jailed")
		}
		endedOnB("the user jailed", cB, onB)
		_, jailed := e.sftpClient(t, b.addr, login)
		if got, err := jailed.ReadDir("/"); err != nil || len(got) != 1 || got[0].Name() != "Projects Shared With Me" {
			t.Errorf("after reconnecting, / holds %v, %v; want only the shared mount", got, err)
		}
	})

	t.Run("trial over", func(t *testing.T) {
		login := e.trialUser(t)
		cB, onB := e.sftpClient(t, b.addr, login)
		if _, err := onB.ReadDir("/My Files"); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(15 * 24 * time.Hour)
		endedOnB("the trial running out", cB, onB)
	})
}

// A session that ends normally tells the client so (exit-status 0), as
// OpenSSH's sshd does: `scp f host:x && next` goes on to next, and
// `ssh -s host sftp` exits 0.
func TestE2EExitStatus(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	local := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(local, []byte("scp me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range e.openSSHLogins(t) {
		t.Run(tc.name, func(t *testing.T) {
			name := "scp-" + tc.name + ".txt"
			if out, err := tc.auth.scp(t, e.addr, e.login, local, name); err != nil {
				t.Errorf("scp: %v\n%s", err, out)
			}
			if got, err := e.readHome(t, name); err != nil || string(got) != "scp me" {
				t.Errorf("uploaded file = %q, %v", got, err)
			}
			if out, err := tc.auth.subsystem(t, e.addr, e.login, ""); err != nil {
				t.Errorf("ssh -s sftp with no requests: %v\n%s", err, out)
			}
		})
	}
}

// TestE2ECreatedJailed: a user created in the jailed group with SFTP on, who
// logs in with the login from their credentials email the moment it exists,
// never sees /My Files: the group and the credentials come in one commit.
func TestE2ECreatedJailed(t *testing.T) {
	e := newE2E(t)
	groups, err := e.svc.Sharing.Groups(e.owner, e.user.AccountID, tenant.Order{}, tenant.Page{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(groups.Items, func(g *sharing.Group) bool { return g.Builtin == sharing.GroupJailed })
	u, err := e.svc.People.CreateUser(e.owner, people.CreateUserInput{Email: "jay@acme.test", Name: "Jay", Password: e.password,
		SFTPEnabled: true, GroupID: groups.Items[i].ID})
	if err != nil {
		t.Fatal(err)
	}
	type credentialsMail struct {
		Login  string
		Jailed bool
	}
	var (
		mails []credentialsMail
		rows  []string
	)
	if err := e.svc.DB.X.Select(&rows, `SELECT data::text FROM outbox WHERE kind = 'sftp_enabled' AND recipient = $1`, u.Email); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		var m credentialsMail
		if err := json.Unmarshal([]byte(r), &m); err != nil {
			t.Fatal(err)
		}
		mails = append(mails, m)
	}
	if len(mails) != 1 || !mails[0].Jailed || mails[0].Login == "" {
		t.Fatalf("credentials emails: %+v; want one, saying the user is jailed", mails)
	}
	_, sc := e.sftpClient(t, e.addr, mails[0].Login)
	if got, err := sc.ReadDir("/"); err != nil || len(got) != 1 || got[0].Name() != "Projects Shared With Me" {
		t.Errorf("/ holds %v, %v; want only the shared mount", got, err)
	}
	if _, err := sc.Stat("/My Files"); err == nil {
		t.Error("the user created jailed reaches /My Files")
	}
	wd, err := sc.Getwd()
	if err != nil || wd != "/Projects Shared With Me" {
		t.Errorf("the session starts in %q, %v; want /Projects Shared With Me", wd, err)
	}
}

// Unauthenticated clients cannot write big logs: 200- and 200,000-character
// login names are clipped, and a flood of identical refusals is written a
// few times only (issue #13 measured 39 MiB of log in 5 s before).
func TestE2ELogHygiene(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n := e.startNode(t, nil, nil)
	for _, size := range []int{200, 200000} {
		before := len(n.logs.String())
		if passwordTry(t, "127.0.0.6", n.addr, strings.Repeat("n", size), "guess") {
			t.Fatal("a made-up login got in")
		}
		written := n.logs.String()[before:]
		if len(written) > 4096 || !strings.Contains(written, "…("+strconv.Itoa(size)+" bytes)") {
			t.Fatalf("a %d-character login wrote %d bytes of log:\n%.5000s", size, len(written), written)
		}
	}
	before := len(n.logs.String())
	started := time.Now()
	for range 20 {
		passwordTry(t, "127.0.0.7", n.addr, "nobody-here", "guess")
	}
	// At most logBurst lines per window, over the windows the tries spanned
	// (the first may have begun before them). On a quiet machine the 20 tries
	// take a second or two: at most two windows, 10 lines.
	windows := int(time.Since(started)/logWindow) + 2
	if windows*logBurst >= 20 {
		t.Logf("20 tries took %v: too slow here to tell the rate limit from no limit", time.Since(started))
		return
	}
	if got := strings.Count(n.logs.String()[before:], "sftp login refused"); got == 0 || got > windows*logBurst {
		t.Fatalf("20 identical refusals over %v wrote %d lines:\n%s", time.Since(started), got, n.logs.String()[before:])
	}
}
