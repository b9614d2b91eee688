package sftp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestGenerateAndParseHostKeys(t *testing.T) {
	pems, err := GenerateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	signers, err := ParseHostKeys(pems)
	if err != nil {
		t.Fatal(err)
	}
	fps := Fingerprints(signers)
	var types []string
	for _, fp := range fps {
		types = append(types, fp.Algorithm)
		if !strings.HasPrefix(fp.SHA256, "SHA256:") {
			t.Errorf("fingerprint %q lacks the SHA256: prefix", fp.SHA256)
		}
	}
	if want := []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"}; !slices.Equal(types, want) {
		t.Errorf("key types %v, want %v", types, want)
	}
	rsaKey := signers[2].PublicKey().(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey)
	if rsaKey.N.BitLen() != 3072 {
		t.Errorf("RSA key has %d bits, want 3072", rsaKey.N.BitLen())
	}
	m, ok := signers[2].(ssh.MultiAlgorithmSigner)
	if !ok || slices.Contains(m.Algorithms(), ssh.KeyAlgoRSA) || len(m.Algorithms()) == 0 {
		t.Errorf("RSA signer may sign with %v, want SHA-2 only", m.Algorithms())
	}
	for _, p := range pems {
		if b, _ := pem.Decode(p); b == nil || b.Type != "OPENSSH PRIVATE KEY" {
			t.Errorf("not an OpenSSH private key:\n%s", p)
		}
	}
}

func TestParseHostKeysRefusesWeakKeys(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(small, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseHostKeys([][]byte{pem.EncodeToMemory(block)}); err == nil {
		t.Error("RSA 1024 host key accepted")
	}
	if _, err := ParseHostKeys([][]byte{[]byte("not a key")}); err == nil {
		t.Error("garbage accepted as a host key")
	}
}

// The key directory generates keys once, keeps them private, and a client
// sees the same host key after the server restarts. (One test, because
// generating an RSA key is slow under the race detector.)
func TestHostKeyDirPersistsAcrossRestart(t *testing.T) {
	keyDir := filepath.Join(t.TempDir(), "hostkeys")
	fingerprint := func() (string, []HostKeyFingerprint) {
		hk, err := OpenHostKeyDir(keyDir)
		if err != nil {
			t.Fatal(err)
		}
		ts := newTestServer(t, &fakeDirectory{password: passwords(alice)}, func(c *Config) { c.HostKeys = hk })
		cfg, hostKey := clientConfig("alice", ssh.Password(testPassword))
		c, err := dial(t, ts.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		return ssh.FingerprintSHA256(*hostKey), Fingerprints(hk.Signers())
	}
	seen1, all1 := fingerprint()
	seen2, all2 := fingerprint()
	if seen1 != seen2 {
		t.Errorf("host key changed across restart: %s then %s", seen1, seen2)
	}
	if len(all1) != 3 || !slices.Equal(all1, all2) {
		t.Errorf("stored keys changed on reopen: %v then %v", all1, all2)
	}

	entries, err := os.ReadDir(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.Name(), "ssh_host_") {
			t.Errorf("stray file %s left in the key directory", e.Name())
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	// ssh-keygen agrees with our fingerprints.
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		out, err := exec.Command("ssh-keygen", "-l", "-f", filepath.Join(keyDir, "ssh_host_ed25519_key")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), all1[0].SHA256) {
			t.Errorf("ssh-keygen -l says %q (%v), want %s", out, err, all1[0].SHA256)
		}
	}
}

// Each destination presents its own host keys: a dedicated IP has its
// account's keys.
func TestHostKeysPerDestination(t *testing.T) {
	keyA, keyB := ed25519Signer(t), ed25519Signer(t)
	ts := newTestServer(t, &fakeDirectory{password: passwords(alice)}, func(c *Config) {
		c.HostKeys.(*staticHostKeys).byDest = map[netip.Addr][]ssh.Signer{
			netip.MustParseAddr("127.0.0.2"): {keyA},
			netip.MustParseAddr("127.0.0.3"): {keyB},
		}
	}, "127.0.0.2", "127.0.0.3")
	addrs := ts.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("listening on %v, want two addresses", addrs)
	}
	want := map[string]ssh.PublicKey{"127.0.0.2": keyA.PublicKey(), "127.0.0.3": keyB.PublicKey()}
	for _, a := range addrs {
		host := a.(*net.TCPAddr).IP.String()
		cfg, hostKey := clientConfig("alice", ssh.Password(testPassword))
		if _, err := dial(t, a.String(), cfg); err != nil {
			t.Fatal(err)
		}
		if ssh.FingerprintSHA256(*hostKey) != ssh.FingerprintSHA256(want[host]) {
			t.Errorf("%s presented %s, want %s", host, ssh.FingerprintSHA256(*hostKey), ssh.FingerprintSHA256(want[host]))
		}
	}
}

func TestNoHostKeysRefusesConnection(t *testing.T) {
	ts := newTestServer(t, &fakeDirectory{password: passwords(alice)}, func(c *Config) {
		c.HostKeys = hostKeysFunc(func(context.Context, netip.Addr) ([]ssh.Signer, error) {
			return nil, errors.New("store unavailable")
		})
	})
	cfg, _ := clientConfig("alice", ssh.Password(testPassword))
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatal("connected without host keys")
	}
	if !strings.Contains(ts.logs.String(), "store unavailable") {
		t.Errorf("host key failure not logged:\n%s", ts.logs.String())
	}
}

type hostKeysFunc func(context.Context, netip.Addr) ([]ssh.Signer, error)

func (f hostKeysFunc) HostKeys(ctx context.Context, dest netip.Addr) ([]ssh.Signer, error) {
	return f(ctx, dest)
}
