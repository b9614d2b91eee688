package sftp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// A host key store cannot make the server present a weak key.
func TestWeakHostKeysRefused(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(small)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hostKeySigner(signer); err == nil {
		t.Error("RSA 1024 host key accepted")
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
