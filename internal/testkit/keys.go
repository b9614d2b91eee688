package testkit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Ed25519Key returns a new Ed25519 SSH public key.
func Ed25519Key(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return SSHKey(t, pub)
}

// ECDSAKey returns a new ECDSA SSH public key on the NIST curve of bits bits
// (256, 384 or 521).
func ECDSAKey(t testing.TB, bits int) ssh.PublicKey {
	t.Helper()
	curve := map[int]elliptic.Curve{256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[bits]
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return SSHKey(t, &k.PublicKey)
}

// SSHKey wraps a crypto public key as an SSH one.
func SSHKey(t testing.TB, pub any) ssh.PublicKey {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// AuthorizedKey is k as a line of authorized_keys, with comment.
func AuthorizedKey(k ssh.PublicKey, comment string) string {
	return strings.TrimSpace(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment)
}

// keyAlgoDSA names DSA keys, which x/crypto no longer parses (its constant
// for the name is deprecated); tests need it to check they are refused.
const keyAlgoDSA = "ssh-dss"

// DSALine is an ssh-dss authorized_keys line.
func DSALine() string {
	return keyAlgoDSA + " " + base64.StdEncoding.EncodeToString(DSABlob()) + " old@host"
}

// DSABlob is a (tiny, invalid) DSA public key in SSH wire format.
func DSABlob() []byte {
	return ssh.Marshal(struct {
		Type       string
		P, Q, G, Y *big.Int
	}{keyAlgoDSA, big.NewInt(23), big.NewInt(11), big.NewInt(4), big.NewInt(8)})
}
