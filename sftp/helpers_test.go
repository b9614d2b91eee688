package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant/sftplogin"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Test identities: one account with two users.
const (
	testAccount  = "acct-1"
	testPassword = "correct horse battery staple"
)

var (
	alice = sftplogin.Login{AccountID: testAccount, UserID: "user-alice", Login: "alice", KeyID: "key-alice"}
	bob   = sftplogin.Login{AccountID: testAccount, UserID: "user-bob", Login: "bob"}
)

// call is one Directory call as the fake saw it.
type call struct {
	method       string
	dest, remote netip.Addr
	login        string
	key          string // fingerprint for public-key calls
}

// fakeDirectory is a Directory made of function fields; it records calls.
type fakeDirectory struct {
	password  func(login, password string) (*sftplogin.Login, error)
	publicKey func(login string, key ssh.PublicKey) (*sftplogin.Login, error)

	mu    sync.Mutex
	calls []call
	used  []string // account/key IDs passed to MarkKeyUsed
}

func (d *fakeDirectory) PasswordLogin(_ context.Context, dest, remote netip.Addr, login, password string) (*sftplogin.Login, error) {
	d.record(call{method: "password", dest: dest, remote: remote, login: login})
	if d.password == nil {
		return nil, fmt.Errorf("%w: password logins disabled in this test", sftplogin.ErrLoginFailed)
	}
	return d.password(login, password)
}

func (d *fakeDirectory) PublicKeyLogin(_ context.Context, dest, remote netip.Addr, login string, key ssh.PublicKey) (*sftplogin.Login, error) {
	d.record(call{method: "publickey", dest: dest, remote: remote, login: login, key: ssh.FingerprintSHA256(key)})
	if d.publicKey == nil {
		return nil, fmt.Errorf("%w: key logins disabled in this test", sftplogin.ErrLoginFailed)
	}
	return d.publicKey(login, key)
}

func (d *fakeDirectory) MarkKeyUsed(_ context.Context, l *sftplogin.Login) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.used = append(d.used, l.AccountID+"/"+l.KeyID)
	return nil
}

func (d *fakeDirectory) record(c call) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, c)
}

func (d *fakeDirectory) Calls() []call {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]call(nil), d.calls...)
}

// passwords returns a password check accepting testPassword for the given
// users (by login name).
func passwords(users ...sftplogin.Login) func(string, string) (*sftplogin.Login, error) {
	return func(login, password string) (*sftplogin.Login, error) {
		for _, u := range users {
			if u.Login == login && password == testPassword {
				return &u, nil
			}
		}
		return nil, fmt.Errorf("%w: bad login or password", sftplogin.ErrLoginFailed)
	}
}

// keys returns a public-key check accepting each key for its user.
func keys(accept map[*sftplogin.Login]ssh.PublicKey) func(string, ssh.PublicKey) (*sftplogin.Login, error) {
	return func(login string, key ssh.PublicKey) (*sftplogin.Login, error) {
		for u, k := range accept {
			if u.Login == login && bytes.Equal(k.Marshal(), key.Marshal()) {
				return u, nil
			}
		}
		return nil, fmt.Errorf("%w: key not registered", sftplogin.ErrLoginFailed)
	}
}

// dirSessions serves SFTP over a temporary directory (the real tree comes
// from sftp/vfs) and remembers who opened sessions.
type dirSessions struct {
	root string

	mu     sync.Mutex
	logins []sftplogin.Login
}

func (f *dirSessions) Open(_ context.Context, login *sftplogin.Login) (Session, error) {
	f.mu.Lock()
	f.logins = append(f.logins, *login)
	f.mu.Unlock()
	return &dirSession{root: f.root}, nil
}

func (f *dirSessions) Logins() []sftplogin.Login {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sftplogin.Login(nil), f.logins...)
}

type dirSession struct{ root string }

func (s *dirSession) Serve(ch io.ReadWriteCloser) error {
	srv, err := pkgsftp.NewServer(ch, pkgsftp.WithServerWorkingDirectory(s.root))
	if err != nil {
		return err
	}
	return srv.Serve()
}

func (s *dirSession) Close() error { return nil }

// staticHostKeys presents fixed keys per destination, or def for others.
type staticHostKeys struct {
	def    []ssh.Signer
	byDest map[netip.Addr][]ssh.Signer

	mu    sync.Mutex
	dests []netip.Addr
}

func (h *staticHostKeys) HostKeys(_ context.Context, dest netip.Addr) ([]ssh.Signer, error) {
	h.mu.Lock()
	h.dests = append(h.dests, dest)
	h.mu.Unlock()
	if k, ok := h.byDest[dest]; ok {
		return k, nil
	}
	return h.def, nil
}

func (h *staticHostKeys) Dests() []netip.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]netip.Addr(nil), h.dests...)
}

// ed25519Signer is a fresh Ed25519 key, cheap enough for every test.
func ed25519Signer(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writePrivateKey stores a fresh Ed25519 user key as OpenSSH writes it
// (mode 0600, or ssh refuses it) and returns its path and signer.
func writePrivateKey(t testing.TB, dir string) (string, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "id_ed25519_"+strconv.Itoa(int(time.Now().UnixNano()%1e9)))
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return path, s
}

// logBuffer collects a server's log lines for assertions.
type logBuffer = testkit.SyncBuffer

// testServer is a running Server with its fakes.
type testServer struct {
	*Server
	dir      *fakeDirectory
	sessions *dirSessions
	hostKeys *staticHostKeys
	logs     *logBuffer
	addr     string // host:port of the first listener
}

// newTestServer starts a server on 127.0.0.2 (or the given IPs) with a
// port chosen by the system. edit may change the config before start.
func newTestServer(t *testing.T, dir *fakeDirectory, edit func(*Config), ips ...string) *testServer {
	t.Helper()
	if len(ips) == 0 {
		ips = []string{"127.0.0.2"}
	}
	ts := &testServer{
		dir:      dir,
		sessions: &dirSessions{root: t.TempDir()},
		hostKeys: &staticHostKeys{def: []ssh.Signer{ed25519Signer(t)}},
		logs:     &logBuffer{},
	}
	cfg := Config{
		Directory: dir,
		HostKeys:  ts.hostKeys,
		Sessions:  ts.sessions,
		Logger:    slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, ip := range ips {
		cfg.ListenAddresses = append(cfg.ListenAddresses, net.JoinHostPort(ip, "0"))
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	if err := srv.Listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts.addr = srv.Addrs()[0].String()
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ListenAndServe returned %v, want ErrServerClosed", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logs.String())
		}
	})
	return ts
}

// clientConfig is an x/crypto client config that accepts any host key and
// records the one presented.
func clientConfig(user string, auth ...ssh.AuthMethod) (*ssh.ClientConfig, *ssh.PublicKey) {
	var hostKey ssh.PublicKey
	return &ssh.ClientConfig{
		User: user,
		Auth: auth,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			hostKey = key
			return nil
		},
		Timeout: 10 * time.Second,
	}, &hostKey
}

// dial connects an x/crypto client and closes it when the test ends.
func dial(t *testing.T, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	t.Helper()
	c, err := ssh.Dial("tcp", addr, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// mustSFTP opens an SFTP client on c.
func mustSFTP(t *testing.T, c *ssh.Client) *pkgsftp.Client {
	t.Helper()
	sc, err := pkgsftp.NewClient(c)
	if err != nil {
		t.Fatalf("sftp subsystem: %v", err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
