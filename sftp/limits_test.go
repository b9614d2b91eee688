package sftp

import (
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// carol is a user of another account.
var carol = sftplogin.Login{AccountID: "account-other", UserID: "user-carol", Login: "carol"}

// limitsServer serves alice and bob (one account) and carol (another) with
// small caps.
func limitsServer(t *testing.T, edit func(*Limits)) (*testServer, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	ts := newTestServer(t, &fakeDirectory{password: passwords(alice, bob, carol)}, func(c *Config) {
		edit(&c.Limits)
		c.Metrics = m
	})
	return ts, m
}

// wantCount checks a counter of m's.
func wantCount(t *testing.T, c prometheus.Counter, what string, want float64) {
	t.Helper()
	if got := testutil.ToFloat64(c); got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// banners records what the server shows a client during authentication.
type banners struct {
	mu   sync.Mutex
	text strings.Builder
}

func (b *banners) config(user string) *ssh.ClientConfig {
	cfg, _ := clientConfig(user, ssh.Password(testPassword))
	cfg.BannerCallback = func(msg string) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.text.WriteString(msg)
		return nil
	}
	return cfg
}

func (b *banners) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.text.String()
}

// transfer writes a file over a new SFTP channel of c and reads it back.
func transfer(t *testing.T, c *ssh.Client, name string) {
	t.Helper()
	sc := mustSFTP(t, c)
	f, err := sc.Create(name)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := f.Write([]byte("payload")); err != nil {
		t.Fatalf("write: %v", err)
	}
	f.Close()
	g, err := sc.Open(name)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer g.Close()
	buf := make([]byte, 16)
	if n, _ := g.Read(buf); string(buf[:n]) != "payload" {
		t.Fatalf("read back %q", buf[:n])
	}
}

// A user at their cap of logged-in connections, then their account at its,
// are refused at login with the reason shown to the client; another
// account's user logs in and transfers meanwhile, and a slot freed is
// taken again.
func TestSessionsPerUserAndAccountCapped(t *testing.T) {
	ts, m := limitsServer(t, func(l *Limits) {
		l.MaxConnectionsPerUser = 2
		l.MaxConnectionsPerAccount = 3
	})
	var seen banners
	var held []*ssh.Client
	for range 2 {
		c, err := dial(t, ts.addr, seen.config("alice"))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The flood: bounded in count, each attempt refused at once.
	for range 5 {
		if _, err := dial(t, ts.addr, seen.config("alice")); err == nil {
			t.Fatal("alice logged in over her cap of 2 sessions")
		}
	}
	if got := seen.String(); !strings.Contains(got, "too many SFTP sessions for this user (limit 2)") {
		t.Errorf("banner %q, want the per-user cap's message", got)
	}
	if _, err := dial(t, ts.addr, seen.config("bob")); err != nil {
		t.Fatalf("bob, the account's third session: %v", err)
	}
	if _, err := dial(t, ts.addr, seen.config("bob")); err == nil {
		t.Fatal("bob logged in over the account's cap of 3")
	}
	if got := seen.String(); !strings.Contains(got, "too many SFTP sessions for this account (limit 3)") {
		t.Errorf("banner %q, want the per-account cap's message", got)
	}

	// Another tenant notices nothing.
	var other banners
	c, err := dial(t, ts.addr, other.config("carol"))
	if err != nil {
		t.Fatalf("carol: %v", err)
	}
	transfer(t, c, "carol.txt")
	if other.String() != "" {
		t.Errorf("carol was shown %q", other.String())
	}

	wantCount(t, m.limits.WithLabelValues("sessions", "user"), "sessions refused per user", 5)
	wantCount(t, m.limits.WithLabelValues("sessions", "account"), "sessions refused per account", 1)
	wantCount(t, m.auths[[2]string{"password", "refused"}], "password logins refused by a cap", 6)
	wantCount(t, m.auths[[2]string{"password", "success"}], "password logins", 4)

	held[0].Close()
	testkit.Eventually(t, "alice's session to be released", func() bool {
		c, err := ssh.Dial("tcp", ts.addr, seen.config("alice"))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// Channels are capped per user, per account and on the server; a refused
// channel names the cap, and the connection's other channels, and other
// tenants, go on.
func TestChannelsPerUserAccountAndServerCapped(t *testing.T) {
	ts, m := limitsServer(t, func(l *Limits) {
		l.MaxChannelsPerUser = 3
		l.MaxChannelsPerAccount = 4
		l.MaxChannels = 6
	})
	open := func(c *ssh.Client) error {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err == nil {
			go ssh.DiscardRequests(reqs)
			t.Cleanup(func() { ch.Close() })
		}
		return err
	}
	refused := func(c *ssh.Client, want string) {
		t.Helper()
		err := open(c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("channel: %v, want a refusal naming %q", err, want)
		}
	}
	a, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	a2, err := dial(t, ts.addr, aliceConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*ssh.Client{a, a, a2} {
		if err := open(c); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		refused(a2, "too many SFTP channels for this user (limit 3)")
	}
	cfg, _ := clientConfig("bob", ssh.Password(testPassword))
	b, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := open(b); err != nil {
		t.Fatal(err)
	}
	refused(b, "too many SFTP channels for this account (limit 4)")

	cfg, _ = clientConfig("carol", ssh.Password(testPassword))
	c, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, c, "carol.txt") // one channel, closed when the test ends
	if err := open(c); err != nil {
		t.Fatal(err)
	}
	refused(c, "too many SFTP channels on this server (limit 6)")
	wantCount(t, m.limits.WithLabelValues("channels", "user"), "channels refused per user", 5)
	wantCount(t, m.limits.WithLabelValues("channels", "account"), "channels refused per account", 1)
	wantCount(t, m.limits.WithLabelValues("channels", "server"), "channels refused on the server", 1)
}
