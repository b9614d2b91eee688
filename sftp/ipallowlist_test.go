package sftp

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/tenant"
)

// allowlistTry logs in once through x/crypto from the local address from,
// after a PROXY header naming src when src is not empty, and returns the
// client's error (nil: it got in).
func allowlistTry(t *testing.T, from, src, addr, login string, auth ssh.AuthMethod) error {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if src != "" {
		h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
			net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:22")))
		if _, err := h.WriteTo(raw); err != nil {
			t.Fatal(err)
		}
	}
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	cfg, _ := clientConfig(login, auth)
	c, chans, reqs, err := ssh.NewClientConn(raw, addr, cfg)
	if err != nil {
		raw.Close()
		return err
	}
	ssh.NewClient(c, chans, reqs).Close()
	return nil
}

// The account's and the user's IP allowlists hold for SFTP logins, by
// password and by key, directly and through a trusted load balancer's PROXY
// header; a refusal looks like any other and the log says why.
func TestE2EIPAllowlists(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	n := e.startNode(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }, nil)
	_, signer := writePrivateKey(t, t.TempDir())
	if _, err := e.svc.SFTP.AddSSHKey(e.owner, e.user.ID, "laptop", string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); err != nil {
		t.Fatal(err)
	}
	password, key := ssh.Password(e.password), ssh.PublicKeys(signer)
	wrongPassword := allowlistTry(t, "127.0.0.5", "", n.addr, e.login, ssh.Password("not the password"))
	if wrongPassword == nil {
		t.Fatal("a wrong password got in")
	}
	// No list: anyone with the password gets in.
	if err := allowlistTry(t, "127.0.0.4", "", n.addr, e.login, password); err != nil {
		t.Fatalf("no allowlist, refused: %v", err)
	}

	owner := *tenant.PrincipalFrom(e.owner)
	owner.Addr = netip.MustParseAddr("203.0.113.1")
	ownerCtx := tenant.WithPrincipal(e.owner, &owner)
	if _, err := e.svc.People.SetAccountIPAllowlist(ownerCtx, []string{"127.0.0.3", "203.0.113.0/24"}); err != nil {
		t.Fatal(err)
	}
	for _, auth := range []struct {
		name string
		m    ssh.AuthMethod
	}{{"password", password}, {"key", key}} {
		e.clock.Advance(time.Hour) // past the failure memory
		for _, tc := range []struct {
			from, src string
			ok        bool
		}{
			{from: "127.0.0.3", ok: true},                            // direct, in the list
			{from: "127.0.0.4", ok: false},                           // direct, not in it
			{from: "127.0.0.4", src: "203.0.113.9:40000", ok: false}, // an untrusted source's header: refused outright
			{from: "127.0.0.1", src: "203.0.113.9:40000", ok: true},  // the balancer says 203.0.113.9
			{from: "127.0.0.1", src: "198.51.100.9:40000", ok: false},
			{from: "127.0.0.1", ok: false}, // the balancer itself is not in the list
		} {
			logged := len(n.logs.String())
			err := allowlistTry(t, tc.from, tc.src, n.addr, e.login, auth.m)
			switch {
			case tc.ok && err != nil:
				t.Errorf("%s from %s (header %q): refused: %v", auth.name, tc.from, tc.src, err)
			case !tc.ok && err == nil:
				t.Errorf("%s from %s (header %q): got in", auth.name, tc.from, tc.src)
			case !tc.ok && tc.from != "127.0.0.4" || !tc.ok && tc.src == "":
				if auth.name == "password" && err.Error() != wrongPassword.Error() {
					t.Errorf("the refusal %q does not look like a wrong password's %q", err, wrongPassword)
				}
				if log := n.logs.String()[logged:]; !strings.Contains(log, "not in the account's IP allowlist") {
					t.Errorf("%s from %s (header %q): the log does not say why:\n%s", auth.name, tc.from, tc.src, log)
				}
			}
		}
	}

	// The user's own list narrows the account's.
	if _, err := e.svc.People.SetUserIPAllowlist(ownerCtx, e.user.ID, []string{"203.0.113.0/25"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if err := allowlistTry(t, "127.0.0.1", "203.0.113.9:40000", n.addr, e.login, key); err != nil {
		t.Errorf("inside both lists, refused: %v", err)
	}
	logged := len(n.logs.String())
	if err := allowlistTry(t, "127.0.0.1", "203.0.113.200:40000", n.addr, e.login, key); err == nil {
		t.Error("outside the user's list, got in")
	}
	if log := n.logs.String()[logged:]; !strings.Contains(log, "not in the user's IP allowlist") {
		t.Errorf("the log does not say why:\n%s", log)
	}
	if err := allowlistTry(t, "127.0.0.3", "", n.addr, e.login, key); err == nil {
		t.Error("in the account's list but outside the user's, got in")
	}
}
