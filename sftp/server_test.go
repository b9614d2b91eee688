package sftp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant/sftplogin"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// The user is the one whose key the client proved it holds, not the last
// key it asked about.
func TestPublicKeyLoginFollowsVerifiedKey(t *testing.T) {
	keyA, keyB := ed25519Signer(t), ed25519Signer(t)

	t.Run("offers B then A, only A accepted", func(t *testing.T) {
		dir := &fakeDirectory{publicKey: keys(map[*sftplogin.Login]ssh.PublicKey{&alice: keyA.PublicKey()})}
		ts := newTestServer(t, dir, nil)
		cfg, _ := clientConfig("alice", ssh.PublicKeys(keyB, keyA))
		c, err := dial(t, ts.addr, cfg)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		mustSFTP(t, c)
		logins := ts.sessions.Logins()
		if len(logins) != 1 || logins[0].UserID != alice.UserID ||
			logins[0].KeyFingerprint != ssh.FingerprintSHA256(keyA.PublicKey()) {
			t.Errorf("session for %+v, want alice with key A", logins)
		}
		var asked []string
		for _, call := range dir.Calls() {
			asked = append(asked, call.key)
		}
		if !slices.Contains(asked, ssh.FingerprintSHA256(keyB.PublicKey())) {
			t.Errorf("directory was never asked about key B (asked %v): the test proves nothing", asked)
		}
	})

	t.Run("only B, not accepted", func(t *testing.T) {
		dir := &fakeDirectory{publicKey: keys(map[*sftplogin.Login]ssh.PublicKey{&alice: keyA.PublicKey()})}
		ts := newTestServer(t, dir, nil)
		cfg, _ := clientConfig("alice", ssh.PublicKeys(keyB))
		if _, err := dial(t, ts.addr, cfg); err == nil {
			t.Fatal("login with an unregistered key succeeded")
		}
		if n := len(ts.sessions.Logins()); n != 0 {
			t.Errorf("%d sessions opened", n)
		}
	})

	t.Run("both accepted for different users", func(t *testing.T) {
		// A is bob's key, B is alice's; both names map to the user whose
		// key verifies.
		dir := &fakeDirectory{publicKey: func(login string, key ssh.PublicKey) (*sftplogin.Login, error) {
			switch ssh.FingerprintSHA256(key) {
			case ssh.FingerprintSHA256(keyA.PublicKey()):
				return &bob, nil
			case ssh.FingerprintSHA256(keyB.PublicKey()):
				return &alice, nil
			}
			return nil, sftplogin.ErrLoginFailed
		}}
		ts := newTestServer(t, dir, nil)
		cfg, _ := clientConfig("someone", ssh.PublicKeys(keyB, keyA))
		c, err := dial(t, ts.addr, cfg)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		mustSFTP(t, c)
		if logins := ts.sessions.Logins(); len(logins) != 1 || logins[0].UserID != alice.UserID {
			t.Errorf("session for %+v, want alice (key B verified first)", logins)
		}
	})
}

func TestKeyboardInteractiveLogin(t *testing.T) {
	dir := &fakeDirectory{password: passwords(alice)}
	ts := newTestServer(t, dir, nil)
	answer := func(pw string) ssh.AuthMethod {
		return ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			return slices.Repeat([]string{pw}, len(questions)), nil
		})
	}
	cfg, _ := clientConfig("alice", answer("wrong"))
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatal("wrong password accepted")
	}
	cfg, _ = clientConfig("alice", answer(testPassword))
	c, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	mustSFTP(t, c)
}

func TestDirectoryErrorLooksLikeRefusal(t *testing.T) {
	dir := &fakeDirectory{password: func(string, string) (*sftplogin.Login, error) {
		return nil, errors.New("database is down")
	}}
	ts := newTestServer(t, dir, nil)
	cfg, _ := clientConfig("alice", ssh.Password(testPassword))
	_, err := dial(t, ts.addr, cfg)
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("dial error %v, want the ordinary authentication failure", err)
	}
	if !strings.Contains(ts.logs.String(), "level=ERROR") || !strings.Contains(ts.logs.String(), "database is down") {
		t.Errorf("internal error not logged as such:\n%s", ts.logs.String())
	}
}

func passwordServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	return newTestServer(t, &fakeDirectory{password: passwords(alice, bob)}, edit)
}

func aliceConfig() *ssh.ClientConfig {
	cfg, _ := clientConfig("alice", ssh.Password(testPassword))
	return cfg
}

func TestNegotiatedAlgorithmsAreAllowed(t *testing.T) {
	ts := passwordServer(t, nil)
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	algs := c.Conn.(ssh.AlgorithmsConnMetadata).Algorithms()
	def := DefaultAlgorithms()
	if algs.KeyExchange != ssh.KeyExchangeMLKEM768X25519 {
		t.Errorf("key exchange %q, want %q (both sides prefer it)", algs.KeyExchange, ssh.KeyExchangeMLKEM768X25519)
	}
	for _, dir := range []ssh.DirectionAlgorithms{algs.Read, algs.Write} {
		if !slices.Contains(def.Ciphers, dir.Cipher) {
			t.Errorf("cipher %q is not in the allowed list", dir.Cipher)
		}
	}
}

func TestWeakClientAlgorithmsRefused(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := ssh.NewSignerFromKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	sha1Only, err := ssh.NewSignerWithAlgorithms(rsaSigner.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}
	rsaHost, err := hostKeySigner(rsaSigner)
	if err != nil {
		t.Fatal(err)
	}
	dir := &fakeDirectory{
		password:  passwords(alice),
		publicKey: keys(map[*sftplogin.Login]ssh.PublicKey{&alice: rsaSigner.PublicKey()}),
	}
	ts := newTestServer(t, dir, func(c *Config) {
		c.HostKeys = &staticHostKeys{def: []ssh.Signer{rsaHost}}
	})

	t.Run("RSA with SHA-2 works", func(t *testing.T) {
		cfg, _ := clientConfig("alice", ssh.PublicKeys(rsaSigner))
		c, err := dial(t, ts.addr, cfg)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if hk := c.Conn.(ssh.AlgorithmsConnMetadata).Algorithms().HostKey; hk != ssh.KeyAlgoRSASHA512 && hk != ssh.KeyAlgoRSASHA256 {
			t.Errorf("host key algorithm %q, want rsa-sha2-*", hk)
		}
	})
	cases := map[string]func(*ssh.ClientConfig){
		"CBC cipher only": func(c *ssh.ClientConfig) { c.Ciphers = []string{ssh.InsecureCipherAES128CBC} },
		// AEAD ciphers need no MAC, so the MAC only matters with CTR.
		"CTR with SHA-1 MACs": func(c *ssh.ClientConfig) {
			c.Ciphers = []string{ssh.CipherAES128CTR}
			c.MACs = []string{ssh.HMACSHA1, ssh.InsecureHMACSHA196}
		},
		"ssh-rsa host key only":   func(c *ssh.ClientConfig) { c.HostKeyAlgorithms = []string{ssh.KeyAlgoRSA} },
		"DH group14 SHA-1 only":   func(c *ssh.ClientConfig) { c.KeyExchanges = []string{ssh.InsecureKeyExchangeDH14SHA1} },
		"ssh-rsa user signatures": func(c *ssh.ClientConfig) { c.Auth = []ssh.AuthMethod{ssh.PublicKeys(sha1Only)} },
	}
	for name, weaken := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := aliceConfig()
			weaken(cfg)
			if _, err := dial(t, ts.addr, cfg); err == nil {
				t.Fatal("connection succeeded")
			}
		})
	}
}

func TestConfigRefusesUnsafeCiphers(t *testing.T) {
	_, err := NewServer(Config{
		Directory: &fakeDirectory{}, HostKeys: &staticHostKeys{}, Sessions: &dirSessions{},
		Ciphers: []string{ssh.CipherAES128GCM, ssh.InsecureCipherAES128CBC},
	})
	if err == nil {
		t.Fatal("NewServer accepted aes128-cbc")
	}
}

// Clients on libssh2 < 1.11 (curl on Debian 12) know only encrypt-and-MAC
// SHA-2 MACs: they get in by default, and not with StrictMACs.
func TestNonETMMACsForOldLibssh2(t *testing.T) {
	old := func() *ssh.ClientConfig {
		cfg := aliceConfig()
		cfg.Ciphers = []string{ssh.CipherAES256CTR}
		cfg.MACs = []string{ssh.HMACSHA256}
		return cfg
	}
	if _, err := dial(t, passwordServer(t, nil).addr, old()); err != nil {
		t.Fatalf("hmac-sha2-256 with aes256-ctr refused by default: %v", err)
	}
	strict := passwordServer(t, func(c *Config) { c.MACs = StrictMACs })
	if _, err := dial(t, strict.addr, old()); err == nil {
		t.Fatal("hmac-sha2-256 accepted with StrictMACs")
	}
	if _, err := NewServer(Config{
		Directory: &fakeDirectory{}, HostKeys: &staticHostKeys{}, Sessions: &dirSessions{},
		MACs: []string{ssh.HMACSHA1},
	}); err == nil {
		t.Fatal("NewServer accepted hmac-sha1")
	}
}

// By default an OpenSSH-like client, which prefers ChaCha20, gets AES; a
// server configured to offer ChaCha20 gives it.
func TestChaCha20IsOfferedOnlyWhenConfigured(t *testing.T) {
	prefersChaCha := func() *ssh.ClientConfig {
		cfg := aliceConfig()
		cfg.Ciphers = []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES128CTR, ssh.CipherAES128GCM}
		return cfg
	}
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{nil, ssh.CipherAES128CTR},
		{AllowedCiphers(), ssh.CipherChaCha20Poly1305},
	} {
		ts := passwordServer(t, func(c *Config) { c.Ciphers = tc.offer })
		c, err := dial(t, ts.addr, prefersChaCha())
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Conn.(ssh.AlgorithmsConnMetadata).Algorithms().Write.Cipher; got != tc.want {
			t.Errorf("offering %v: cipher %q, want %q", tc.offer, got, tc.want)
		}
	}
}

func TestCipherOrderIsConfigurable(t *testing.T) {
	ts := passwordServer(t, func(c *Config) { c.Ciphers = []string{ssh.CipherAES256GCM} })
	cfg := aliceConfig()
	// The client prefers ChaCha20, as OpenSSH does; it is not offered.
	cfg.Ciphers = []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES256GCM}
	c, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Conn.(ssh.AlgorithmsConnMetadata).Algorithms().Write.Cipher; got != ssh.CipherAES256GCM {
		t.Errorf("cipher %q, want aes256-gcm@openssh.com", got)
	}
}

// Only the sftp subsystem is served: shells, commands, terminals and
// forwarding are refused, and the connection stays usable.
func TestOnlySFTPIsServed(t *testing.T) {
	ts := passwordServer(t, nil)
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	newSession := func() *ssh.Session {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if err := newSession().Run("id"); err == nil {
		t.Error("exec succeeded")
	}
	if err := newSession().Shell(); err == nil {
		t.Error("shell succeeded")
	}
	if err := newSession().RequestPty("xterm", 24, 80, nil); err == nil {
		t.Error("pty granted")
	}
	if err := newSession().Setenv("LANG", "C"); err == nil {
		t.Error("env accepted")
	}
	if err := newSession().RequestSubsystem("netconf"); err == nil {
		t.Error("another subsystem accepted")
	}
	if ok, err := newSession().SendRequest("auth-agent-req@openssh.com", true, nil); ok || err != nil {
		t.Errorf("agent forwarding: ok=%v err=%v, want refused", ok, err)
	}
	if _, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
		t.Error("port forwarding (direct-tcpip) allowed")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote forwarding (tcpip-forward) allowed")
	}
	// OpenSSH's ServerAliveInterval: a global request that must be answered.
	for range 3 {
		if ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil); ok || err != nil {
			t.Errorf("keepalive: ok=%v err=%v, want an answer that refuses", ok, err)
		}
	}
	// The same connection still serves SFTP.
	sc := mustSFTP(t, c)
	if _, err := sc.Getwd(); err != nil {
		t.Errorf("sftp after refusals: %v", err)
	}
}

func TestSessionsPerConnectionCapped(t *testing.T) {
	ts := passwordServer(t, func(c *Config) { c.Limits.MaxSessionsPerConnection = 2 })
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustSFTP(t, c)
	mustSFTP(t, c)
	if _, err := pkgsftp.NewClient(c); err == nil {
		t.Fatal("third session opened with a cap of 2")
	}
	// Sessions.Open runs once per connection, not per channel.
	if n := len(ts.sessions.Logins()); n != 1 {
		t.Errorf("Sessions.Open called %d times, want 1", n)
	}
}

// A client that connects and says nothing is cut off.
func TestHandshakeTimeoutClosesSilentConnection(t *testing.T) {
	ts := passwordServer(t, func(c *Config) { c.Limits.HandshakeTimeout = 100 * time.Millisecond })
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A generous client-side deadline only bounds the test: the assertion is
	// that the server closes first.
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if !strings.HasPrefix(string(got), ServerVersion+"\r\n") {
		t.Errorf("server sent %q before closing, want its version line", got)
	}
	testkit.Eventually(t, "the connection to be released", func() bool { return ts.ActiveConnections() == 0 })
}

func TestIdleTimeoutClosesConnection(t *testing.T) {
	ts := passwordServer(t, func(c *Config) { c.Limits.IdleTimeout = 200 * time.Millisecond })
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("idle connection still open")
	}
	testkit.Eventually(t, "the log to say why", func() bool { return strings.Contains(ts.logs.String(), "idle timeout") })
}

// The per-address cap refuses the extra connection before the handshake,
// and a connection from elsewhere still gets in.
func TestConnectionCaps(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		ts := passwordServer(t, func(c *Config) { c.Limits.MaxConnectionsPerAddress = 1 })
		first := openRaw(t, ts.addr, "127.0.0.1")
		if !strings.HasPrefix(first, ServerVersion) {
			t.Fatalf("first connection got %q", first)
		}
		if got := openRaw(t, ts.addr, "127.0.0.1"); got != "" {
			t.Errorf("second connection from the same address got %q, want it closed at once", got)
		}
		if got := openRaw(t, ts.addr, "127.0.0.9"); !strings.HasPrefix(got, ServerVersion) {
			t.Errorf("connection from another address got %q", got)
		}
	})
	t.Run("server wide", func(t *testing.T) {
		ts := passwordServer(t, func(c *Config) { c.Limits.MaxConnections = 1 })
		openRaw(t, ts.addr, "127.0.0.1")
		if got := openRaw(t, ts.addr, "127.0.0.9"); got != "" {
			t.Errorf("connection over the server cap got %q", got)
		}
	})
}

// openRaw opens a TCP connection from the given local IP, keeps it open
// until the test ends, and returns what the server sent first: its version
// line, or "" when it closed the connection without a word.
func openRaw(t *testing.T, addr, fromIP string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fromIP)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, len(ServerVersion))
	n, err := io.ReadFull(nc, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
		t.Fatalf("reading from server: %v", err)
	}
	return string(buf[:n])
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

func TestDisconnectEndsUsersSessions(t *testing.T) {
	ts := passwordServer(t, nil)
	aliceConn, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	bobCfg, _ := clientConfig("bob", ssh.Password(testPassword))
	bobConn, err := dial(t, ts.addr, bobCfg)
	if err != nil {
		t.Fatal(err)
	}
	aliceSFTP, bobSFTP := mustSFTP(t, aliceConn), mustSFTP(t, bobConn)
	if _, err := aliceSFTP.ReadDir("."); err != nil {
		t.Fatal(err)
	}
	if n := ts.Disconnect(alice.AccountID, alice.UserID); n != 1 {
		t.Errorf("Disconnect closed %d connections, want 1", n)
	}
	if _, err := aliceSFTP.ReadDir("."); err == nil {
		t.Error("alice's session still works after Disconnect")
	}
	if _, err := bobSFTP.ReadDir("."); err != nil {
		t.Errorf("bob's session broke: %v", err)
	}
	testkit.Eventually(t, "alice's connection to be released", func() bool { return ts.ActiveConnections() == 1 })

	if n := ts.DisconnectAccount(testAccount); n != 1 {
		t.Errorf("DisconnectAccount closed %d connections, want 1", n)
	}
	if _, err := bobSFTP.ReadDir("."); err == nil {
		t.Error("bob's session still works after DisconnectAccount")
	}
}

// Shutdown refuses new connections but lets a live session finish.
func TestGracefulShutdown(t *testing.T) {
	ts := passwordServer(t, nil)
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	sc := mustSFTP(t, c)

	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	testkit.Eventually(t, "the listener to close", func() bool {
		nc, err := net.Dial("tcp", ts.addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	if _, err := sc.ReadDir("."); err != nil {
		t.Fatalf("live session broken by Shutdown: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a session still open", err)
	default:
	}
	sc.Close()
	c.Close()
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestShutdownDeadlineClosesSessions(t *testing.T) {
	ts := passwordServer(t, nil)
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustSFTP(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	if err := c.Wait(); err == nil {
		t.Error("connection ended cleanly, want it cut")
	}
	if n := ts.ActiveConnections(); n != 0 {
		t.Errorf("%d connections left after Shutdown", n)
	}
}

func TestMaxAuthTries(t *testing.T) {
	dir := &fakeDirectory{password: passwords(alice)}
	ts := newTestServer(t, dir, func(c *Config) { c.Limits.MaxAuthTries = 3 })
	cfg, _ := clientConfig("alice", ssh.RetryableAuthMethod(ssh.Password("wrong"), 10))
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatal("wrong password accepted")
	}
	if n := len(dir.Calls()); n != 3 {
		t.Errorf("directory asked %d times, want the cap of 3", n)
	}
}

// When the session cannot start (the user lost access between login and
// session), the client gets no SFTP.
func TestSessionOpenFailureClosesConnection(t *testing.T) {
	ts := passwordServer(t, func(c *Config) {
		c.Sessions = sessionsFunc(func(context.Context, *sftplogin.Login) (Session, error) {
			return nil, errors.New("access withdrawn")
		})
	})
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pkgsftp.NewClient(c); err == nil {
		t.Fatal("SFTP served without a session")
	}
	testkit.Eventually(t, "the failure to be logged", func() bool { return strings.Contains(ts.logs.String(), "access withdrawn") })
}

type sessionsFunc func(context.Context, *sftplogin.Login) (Session, error)

func (f sessionsFunc) Open(ctx context.Context, l *sftplogin.Login) (Session, error) {
	return f(ctx, l)
}

func TestDirectoryAnswerWithoutUserRefused(t *testing.T) {
	ts := newTestServer(t, &fakeDirectory{password: func(string, string) (*sftplogin.Login, error) {
		return &sftplogin.Login{Login: "alice"}, nil
	}}, nil)
	if _, err := dial(t, ts.addr, aliceConfig()); err == nil {
		t.Fatal("login accepted for a Login without account and user")
	}
}

// no-more-sessions@openssh.com, which OpenSSH's ssh sends once its session
// is open, is honoured as sshd honours it: a session channel opened after it
// is refused (someone abusing a running client to open one of their own),
// while the sessions already open keep working.
func TestNoMoreSessionsIsHonoured(t *testing.T) {
	ts := passwordServer(t, nil)
	c, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	sc := mustSFTP(t, c)
	if _, _, err := c.SendRequest("no-more-sessions@openssh.com", false, nil); err != nil {
		t.Fatal(err)
	}
	// A global request answered after it: the server has read it before the next open.
	if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatal(err)
	}
	if s, err := c.NewSession(); err == nil {
		s.Close()
		t.Error("a session opened after no-more-sessions@openssh.com")
	}
	if _, err := sc.Getwd(); err != nil {
		t.Errorf("the session already open: %v", err)
	}
}
