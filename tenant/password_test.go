package tenant

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// Passwords are hashed with argon2id at OWASP's parameters (m=19 MiB, t=2,
// p=1), and a hash verifies by the parameters written in it: one made
// cheap by a test binary (UseCheapPasswordHashes) verifies at its own
// cost, and the server's hashes at theirs. This package's tests never ask
// for cheap hashes.
func TestPasswordHashesAtOWASPParameters(t *testing.T) {
	ctx := context.Background()
	const password = "correct horse battery"
	h, err := HashPassword(ctx, password)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q; want argon2id at m=19456,t=2,p=1", h)
	}
	if !strings.Contains(dummyHash, "$m=19456,t=2,p=1$") {
		t.Errorf("the dummy hash %q is not at the real cost: an unknown login would answer faster", dummyHash)
	}
	salt := []byte("sixteen byte salt")[:16]
	cheap := "$argon2id$v=19$m=64,t=1,p=1$" + b64.EncodeToString(salt) + "$" +
		b64.EncodeToString(argon2.IDKey([]byte(password), salt, 1, 64, 1, 32))
	relabelled := "$argon2id$v=19$m=64,t=1,p=1$" + strings.Join(strings.Split(h, "$")[4:], "$")
	for _, c := range []struct {
		hash, password string
		want           bool
	}{
		{h, password, true},
		{h, "correct horse batteryX", false},
		{cheap, password, true}, // a test binary's hash, at its own cost
		{cheap, "correct horse batteryX", false},
		{relabelled, password, false}, // the real key under another cost: another hash
	} {
		if ok, err := VerifyPassword(ctx, c.hash, c.password); err != nil || ok != c.want {
			t.Errorf("VerifyPassword(%.40s…, %q) = %v, %v; want %v", c.hash, c.password, ok, err, c.want)
		}
	}
}
