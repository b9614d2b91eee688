package domain_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/skiffhq/skiff/tenant/sftplogin"
)

func mustCipher(t *testing.T, key string) *sftplogin.HostKeyCipher {
	t.Helper()
	c, err := sftplogin.ParseHostKeyCipherKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Host keys stored before encryption was turned on stay readable and are
// encrypted at the first start with a key; then a node without the key, or
// with another one, is refused with an error that says so, and the key
// reads them back as the same keys.
func TestHostKeysEncryptedAtRest(t *testing.T) {
	db := newHostKeyDB(t)
	ctx := context.Background()
	plain := sftplogin.NewDirectory(db)
	before, err := plain.HostKeys(ctx, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, n, err := plain.SealStoredHostKeys(ctx); err != nil || n != len(before) {
		t.Fatalf("unencrypted keys: %d, %v; want %d", n, err, len(before))
	}

	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, base64
	enc := sftplogin.NewDirectory(db)
	enc.Cipher = mustCipher(t, key)
	if sealed, _, err := enc.SealStoredHostKeys(ctx); err != nil || sealed != len(before) {
		t.Fatalf("sealed %d, %v; want %d", sealed, err, len(before))
	}
	if sealed, _, err := enc.SealStoredHostKeys(ctx); err != nil || sealed != 0 {
		t.Fatalf("second pass sealed %d, %v", sealed, err)
	}
	after, err := enc.HostKeys(ctx, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(publicKeysOf(before), publicKeysOf(after), bytes.Equal) {
		t.Error("the encrypted keys read back as other keys")
	}
	var n int
	if err := db.X.Get(&n, `SELECT count(*) FROM host_keys WHERE position('PRIVATE KEY'::bytea in private_key) > 0`); err != nil || n != 0 {
		t.Errorf("%d keys still in the clear (%v)", n, err)
	}

	for _, c := range []struct {
		cipher *sftplogin.HostKeyCipher
		want   error
	}{{nil, sftplogin.ErrHostKeysEncrypted}, {mustCipher(t, "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="), sftplogin.ErrHostKeyWrongKey}} {
		d := sftplogin.NewDirectory(db)
		d.Cipher = c.cipher
		if _, _, err := d.SealStoredHostKeys(ctx); !errors.Is(err, c.want) {
			t.Errorf("SealStoredHostKeys: %v, want %v", err, c.want)
		}
		if _, err := d.HostKeys(ctx, netip.Addr{}); !errors.Is(err, c.want) {
			t.Errorf("HostKeys: %v, want %v", err, c.want)
		}
	}
	if _, err := sftplogin.ParseHostKeyCipherKey("too short"); err == nil {
		t.Error("a short key was accepted")
	}
}
