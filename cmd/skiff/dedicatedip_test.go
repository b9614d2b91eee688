package main

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	sftpclient "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Loopback addresses of the dedicated IP test: Skiff listens on the first
// three, the pool is the second and third, and the fourth is a trusted
// load balancer. The fifth sends PROXY headers without being trusted.
const (
	sharedIP    = "127.0.0.1"
	acmeIP      = "127.0.0.2"
	betaIP      = "127.0.0.3"
	balancerIP  = "127.0.0.4"
	intruderIP  = "127.0.0.5"
	alicePass   = "alice's long password"
	bobPassword = "bob's long password!"
)

// startDedicatedServe runs `skiff serve` with its demo account, listening
// for SFTP on three loopback addresses with a dedicated IP pool and a
// trusted load balancer, and returns it with the demo's logins, its SFTP
// address per IP and its data folder.
func startDedicatedServe(t *testing.T) (*server, demoLogins, map[string]string, string) {
	t.Helper()
	s, dl, dataDir := startDemo(t, func(c *ServeCmd) {
		c.HTTP.Playground, c.HTTP.Introspection = "off", "off"
		c.SFTP.Addrs = []string{sharedIP + ":0", acmeIP + ":0", betaIP + ":0"}
		c.SFTP.TrialLicences = 5
		c.SFTP.ProxyTrusted = []string{balancerIP}
		c.DedicatedIPs.Pool = []string{acmeIP + "," + betaIP}
		c.DedicatedIPs.Cooldown = time.Hour
	})
	byIP := map[string]string{}
	for _, a := range s.sftpAll {
		host, _, _ := net.SplitHostPort(a)
		byIP[host] = a
	}
	return s, dl, byIP, dataDir
}

// sshSession is what one Go SSH client login saw.
type sshSession struct {
	hostKey string   // fingerprint of the host key the server presented
	files   []string // names in /My Files
}

// goLogin logs in with the Go SSH client from the local address from to
// addr, sending header first if there is one, and lists /My Files.
func goLogin(t *testing.T, from, addr string, header *proxyproto.Header, login, password string) (*sshSession, error) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if header != nil {
		if _, err := header.WriteTo(nc); err != nil {
			t.Fatal(err)
		}
	}
	seen := &sshSession{}
	cfg := &ssh.ClientConfig{
		User: login,
		Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			seen.hostKey = ssh.FingerprintSHA256(key)
			return nil
		},
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		return seen, err
	}
	client := ssh.NewClient(conn, chans, reqs)
	defer client.Close()
	sc, err := sftpclient.NewClient(client)
	if err != nil {
		return seen, err
	}
	defer sc.Close()
	entries, err := sc.ReadDir("/My Files")
	for _, e := range entries {
		seen.files = append(seen.files, e.Name())
	}
	return seen, err
}

// liveSFTP is an SFTP session kept open with the Go client.
type liveSFTP struct {
	name   string
	sftp   *sftpclient.Client
	closed chan struct{} // closed when the SSH connection ends
}

// openLive logs in with the Go SSH client from the local address from to
// addr, sending header first if there is one, checks that /My Files
// lists, and keeps the session open until the test ends.
func openLive(t *testing.T, name, from, addr string, header *proxyproto.Header, login, password string) *liveSFTP {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if header != nil {
		if _, err := header.WriteTo(nc); err != nil {
			t.Fatal(err)
		}
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{User: login,
		Auth: []ssh.AuthMethod{ssh.Password(password)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	client := ssh.NewClient(conn, chans, reqs)
	sc, err := sftpclient.NewClient(client)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	l := &liveSFTP{name: name, sftp: sc, closed: make(chan struct{})}
	go func() {
		client.Wait()
		close(l.closed)
	}()
	if _, err := sc.ReadDir("/My Files"); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l
}

// endsWithin checks that the client sees its connection close in time.
func (l *liveSFTP) endsWithin(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case <-l.closed:
	case <-time.After(limit):
		t.Errorf("%s: still connected %v after the release", l.name, limit)
	}
}

// works checks that the session is still connected and serves.
func (l *liveSFTP) works(t *testing.T) {
	t.Helper()
	select {
	case <-l.closed:
		t.Errorf("%s: its connection closed", l.name)
	default:
		if _, err := l.sftp.ReadDir("/My Files"); err != nil {
			t.Errorf("%s: %v", l.name, err)
		}
	}
}

func proxyHeaderTo(version byte, dest string) *proxyproto.Header {
	return proxyproto.HeaderProxyFromAddrs(version,
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort("203.0.113.9:50000")),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dest+":22")))
}

func fingerprintsIn(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, fp := range list {
		out = append(out, str(fp, "fingerprint"))
	}
	return out
}

// Support provisions dedicated IPs for two accounts, their owners give a
// user each the same custom login, and each user reaches their own files on
// their account's IP, with their account's host key, directly and through a
// trusted load balancer's PROXY header; what must fail does. Releasing and
// provisioning again work.
func TestDedicatedIPsFullStack(t *testing.T) {
	s, dl, sftpAt, dataDir := startDedicatedServe(t)
	staff := s.login(t, dl.StaffEmail, dl.StaffPassword)
	acmeOwner := s.login(t, dl.OwnerEmail, dl.OwnerPassword)
	acme := str(s.gql(t, acmeOwner, `{ account { id } }`, nil), "account", "id")
	d := s.gql(t, staff, `mutation { createAccount(input: {name: "Beta", ownerEmail: "owner@beta.example", ownerName: "Beta Owner",
		ownerPassword: "beta owner password"}) { account { id } userErrors { message } } }`, nil)
	beta := str(d, "createAccount", "account", "id")
	s.gql(t, staff, `mutation($a: ID!) { activateSftpModule(input: {accountId: $a, licences: 5}) { userErrors { message } } }`, map[string]any{"a": beta})
	betaOwner := s.login(t, "owner@beta.example", "beta owner password")

	// Support provisions: Acme asks for its address, Beta takes the next free one.
	provision := `mutation($a: ID!, $ip: String) { provisionDedicatedIp(input: {accountId: $a, address: $ip}) {
		dedicatedIp { address hostKeyFingerprints { fingerprint } } userErrors { message } } }`
	d = s.gql(t, staff, provision, map[string]any{"a": acme, "ip": acmeIP})
	if got := str(d, "provisionDedicatedIp", "dedicatedIp", "address"); got != acmeIP {
		t.Fatalf("Acme's provisioning: %v", d)
	}
	d = s.gql(t, staff, provision, map[string]any{"a": beta})
	if got := str(d, "provisionDedicatedIp", "dedicatedIp", "address"); got != betaIP {
		t.Fatalf("Beta's provisioning: %v", d)
	}
	// Each account's admins see its keys.
	keysOf := func(owner string) []string {
		return fingerprintsIn(path(s.gql(t, owner, `{ account { dedicatedIp { hostKeyFingerprints { fingerprint } } } }`, nil),
			"account", "dedicatedIp", "hostKeyFingerprints"))
	}
	acmeKeys, betaKeys := keysOf(acmeOwner), keysOf(betaOwner)
	shared := fingerprintsIn(path(s.gql(t, acmeOwner, `{ sftpServer { hostKeyFingerprints { fingerprint } } }`, nil),
		"sftpServer", "hostKeyFingerprints"))
	if len(acmeKeys) != 3 || len(betaKeys) != 3 || len(shared) != 3 || slices.Equal(acmeKeys, betaKeys) {
		t.Fatalf("host keys: Acme %v, Beta %v, shared %v", acmeKeys, betaKeys, shared)
	}

	// Each owner gives a user the same custom login.
	createUser := `mutation($e: String!, $p: String!) { createUser(input: {email: $e, name: "Someone", password: $p,
		sftpEnabled: true, customSftpLogin: "backup"}) { user { sftp { credentials { login customLogin dedicatedHost } } } userErrors { message } } }`
	d = s.gql(t, acmeOwner, createUser, map[string]any{"e": "alice@demo.example", "p": alicePass})
	aliceID := str(d, "createUser", "user", "sftp", "credentials", "login")
	if str(d, "createUser", "user", "sftp", "credentials", "customLogin") != "backup" ||
		str(d, "createUser", "user", "sftp", "credentials", "dedicatedHost") != acmeIP {
		t.Fatalf("Alice: %v", d)
	}
	d = s.gql(t, betaOwner, createUser, map[string]any{"e": "bob@beta.example", "p": bobPassword})
	if str(d, "createUser", "user", "sftp", "credentials", "customLogin") != "backup" {
		t.Fatalf("Bob: %v", d)
	}
	// Alice's credentials email names her custom login, the dedicated IP and its host key.
	mail := waitForMail(t, filepath.Join(dataDir, "mail"), "alice@demo.example")
	for _, want := range []string{"backup", acmeIP, acmeKeys[0], aliceID} {
		if !strings.Contains(mail, want) {
			t.Errorf("Alice's credentials email lacks %q:\n%s", want, mail)
		}
	}

	// With OpenSSH's sftp, each "backup" reaches their own files on their account's IP.
	put := func(addr, password, name string) string {
		t.Helper()
		local := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(local, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := sftpRun(t, addr, "backup", "", password, "put "+local+" "+name+"\nls -1\n")
		if err != nil {
			t.Fatalf("sftp backup@%s: %v\n%s", addr, err, out)
		}
		return out
	}
	put(sftpAt[acmeIP], alicePass, "acme.txt")
	if out := put(sftpAt[betaIP], bobPassword, "beta.txt"); strings.Contains(out, "acme.txt") {
		t.Errorf("Bob sees Alice's file:\n%s", out)
	}

	// What must fail fails: a custom login on the shared address, and
	// Acme's login ID on Beta's IP (refused like an unknown login).
	if out, err := sftpRun(t, sftpAt[sharedIP], "backup", "", alicePass, "ls\n"); err == nil {
		t.Errorf("a custom login got in on the shared address:\n%s", out)
	}
	if out, err := sftpRun(t, sftpAt[betaIP], aliceID, "", alicePass, "ls\n"); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("Acme's login ID on Beta's IP: %v\n%s", err, out)
	}

	// The host key each address presents, directly and through the load
	// balancer, v1 and v2 headers alike.
	for _, tt := range []struct {
		name, from, addr string
		header           *proxyproto.Header
		password         string
		keys             []string
		file             string
	}{
		{"Acme's IP", sharedIP, sftpAt[acmeIP], nil, alicePass, acmeKeys, "acme.txt"},
		{"Beta's IP", sharedIP, sftpAt[betaIP], nil, bobPassword, betaKeys, "beta.txt"},
		{"PROXY v1 to Acme's IP", balancerIP, sftpAt[sharedIP], proxyHeaderTo(1, acmeIP), alicePass, acmeKeys, "acme.txt"},
		{"PROXY v2 to Beta's IP", balancerIP, sftpAt[sharedIP], proxyHeaderTo(2, betaIP), bobPassword, betaKeys, "beta.txt"},
	} {
		seen, err := goLogin(t, tt.from, tt.addr, tt.header, "backup", tt.password)
		if err != nil || !slices.Contains(seen.files, tt.file) || len(seen.files) != 1 {
			t.Errorf("%s: %+v, %v; want only %s", tt.name, seen, err, tt.file)
		}
		if !slices.Contains(tt.keys, seen.hostKey) {
			t.Errorf("%s: host key %s is not the account's %v", tt.name, seen.hostKey, tt.keys)
		}
	}
	if seen, _ := goLogin(t, sharedIP, sftpAt[sharedIP], nil, aliceID, alicePass); !slices.Contains(shared, seen.hostKey) {
		t.Errorf("the shared address presents %s, not the deployment's %v", seen.hostKey, shared)
	}
	// The same headers from a source that is not trusted are refused.
	for _, version := range []byte{1, 2} {
		if seen, err := goLogin(t, intruderIP, sftpAt[sharedIP], proxyHeaderTo(version, acmeIP), "backup", alicePass); err == nil {
			t.Errorf("a v%d header from an untrusted source got in: %+v", version, seen)
		}
	}

	// Live sessions: Alice's on Acme's IP (directly and through the load
	// balancer) and on the shared address, Bob's on Beta's IP.
	aliceDedicated := openLive(t, "Alice's session on Acme's IP", sharedIP, sftpAt[acmeIP], nil, "backup", alicePass)
	aliceProxied := openLive(t, "Alice's session to Acme's IP through the balancer", balancerIP, sftpAt[sharedIP],
		proxyHeaderTo(2, acmeIP), "backup", alicePass)
	aliceShared := openLive(t, "Alice's session on the shared address", sharedIP, sftpAt[sharedIP], nil, aliceID, alicePass)
	bobDedicated := openLive(t, "Bob's session on Beta's IP", sharedIP, sftpAt[betaIP], nil, "backup", bobPassword)
	bobProxied := openLive(t, "Bob's session to Beta's IP through the balancer", balancerIP, sftpAt[sharedIP],
		proxyHeaderTo(1, betaIP), "backup", bobPassword)

	// Released: "backup" stops working on Acme's IP, which now serves login
	// IDs, and Alice's session through it ends; the others go on.
	d = s.gql(t, staff, `mutation($a: ID!) { releaseDedicatedIp(input: {accountId: $a}) { dedicatedIp { releasedAt } userErrors { message } } }`,
		map[string]any{"a": acme})
	if str(d, "releaseDedicatedIp", "dedicatedIp", "releasedAt") == "" {
		t.Fatalf("release: %v", d)
	}
	aliceDedicated.endsWithin(t, time.Second)
	aliceProxied.endsWithin(t, time.Second)
	aliceShared.works(t)
	bobDedicated.works(t)
	bobProxied.works(t)
	if out, err := sftpRun(t, sftpAt[acmeIP], "backup", "", alicePass, "ls\n"); err == nil {
		t.Errorf("the custom login still works after the release:\n%s", out)
	}
	if out, err := sftpRun(t, sftpAt[acmeIP], aliceID, "", alicePass, "ls -1\n"); err != nil || !strings.Contains(out, "acme.txt") {
		t.Errorf("Alice's login ID on the released IP: %v\n%s", err, out)
	}
	d = s.gql(t, acmeOwner, `{ account { users { edges { node { email sftp { credentials { customLogin customLoginActive customLoginNote } } } } } } }`, nil)
	for _, e := range path(d, "account", "users", "edges").([]any) {
		if str(e, "node", "email") != "alice@demo.example" {
			continue
		}
		c := path(e, "node", "sftp", "credentials")
		if str(c, "customLogin") != "backup" || path(c, "customLoginActive") != false || str(c, "customLoginNote") == "" {
			t.Errorf("Alice's credentials after the release: %v", c)
		}
	}

	// Provisioned again: the same address and keys come back, and so does "backup".
	d = s.gql(t, staff, provision, map[string]any{"a": acme})
	if str(d, "provisionDedicatedIp", "dedicatedIp", "address") != acmeIP ||
		!slices.Equal(fingerprintsIn(path(d, "provisionDedicatedIp", "dedicatedIp", "hostKeyFingerprints")), acmeKeys) {
		t.Fatalf("provisioning again: %v", d)
	}
	if out, err := sftpRun(t, sftpAt[acmeIP], "backup", "", alicePass, "ls -1\n"); err != nil || !strings.Contains(out, "acme.txt") {
		t.Errorf("backup after provisioning again: %v\n%s", err, out)
	}
}
