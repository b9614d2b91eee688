package sftpaccess

import (
	"encoding/pem"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"golang.org/x/crypto/ssh"
)

// FuzzParsePublicKey checks that no pasted text makes the parser panic or
// fail with anything but a user error, and that an accepted key is one of
// the allowed types whose fingerprint survives a round trip.
func FuzzParsePublicKey(f *testing.F) {
	for _, k := range []ssh.PublicKey{
		testkit.Ed25519Key(f), testkit.ECDSAKey(f, 256), testkit.ECDSAKey(f, 384), testkit.ECDSAKey(f, 521),
		testRSAKey(f, 2048), testSKEd25519Key(f), testSKECDSAKey(f),
	} {
		f.Add(testkit.AuthorizedKey(k, "user@host"))
		f.Add(rfc4716(k.Marshal(), `"a comment"`))
	}
	f.Add(testkit.AuthorizedKey(testRSAKey(f, 1024), ""))
	f.Add(testkit.DSALine())
	f.Add(string(pem.EncodeToMemory(testPrivateKeyPEM(f))))
	f.Add(`command="rm -rf /" ` + testkit.AuthorizedKey(testkit.Ed25519Key(f), "x"))
	f.Add("ssh-ed25519 not-base64!")
	f.Add("---- BEGIN SSH2 PUBLIC KEY ----\nComment: \\\n")
	f.Add("")

	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParsePublicKey(text)
		if err != nil {
			if tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != "publicKey" || tenant.ErrorMessage(err) == "" {
				t.Fatalf("refusal is not a user error on publicKey: %v", err)
			}
			return
		}
		if _, ok := acceptedKeyBits[k.Algorithm]; !ok {
			t.Fatalf("accepted a %s key", k.Algorithm)
		}
		if k.Algorithm != k.Key.Type() || k.Fingerprint != ssh.FingerprintSHA256(k.Key) {
			t.Fatalf("described as %s %s, but the key is %s %s", k.Algorithm, k.Fingerprint, k.Key.Type(), ssh.FingerprintSHA256(k.Key))
		}
		if k.Algorithm == ssh.KeyAlgoRSA && (k.Bits < minRSAKeyBits || k.Bits > maxRSAKeyBits) {
			t.Fatalf("accepted an RSA key of %d bits", k.Bits)
		}
		again, err := ParsePublicKey(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Key))) + " " + k.Comment)
		if err != nil {
			t.Fatalf("the accepted key, written out again, is refused: %v", err)
		}
		if again.Fingerprint != k.Fingerprint || again.Algorithm != k.Algorithm || again.Bits != k.Bits || again.Comment != k.Comment {
			t.Fatalf("round trip changed the key: %+v then %+v", k, again)
		}
	})
}
