package sftpaccess

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant"
	"golang.org/x/crypto/ssh"
)

// testRSAKey makes an RSA public key of exactly bits bits. Its modulus is a
// random odd number, not a product of two primes: parsing a public key cannot
// tell, and generating real keys of these sizes would take seconds.
func testRSAKey(t testing.TB, bits int) ssh.PublicKey {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits-1)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	return testkit.SSHKey(t, &rsa.PublicKey{N: n, E: 65537})
}

// Security-key (FIDO) public keys cannot be generated without a token, so
// they are built in their wire format (OpenSSH PROTOCOL.u2f).
func testSKEd25519Key(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return mustParseWire(t, ssh.Marshal(struct {
		Type, Key, Application string
	}{ssh.KeyAlgoSKED25519, string(pub), "ssh:"}))
}

func testSKECDSAKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return mustParseWire(t, ssh.Marshal(struct {
		Type, Curve, Point, Application string
	}{ssh.KeyAlgoSKECDSA256, "nistp256", string(k.PublicKey().Bytes()), "ssh:"}))
}

func mustParseWire(t testing.TB, blob []byte) ssh.PublicKey {
	t.Helper()
	k, err := ssh.ParsePublicKey(blob)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testPrivateKeyPEM(t testing.TB) *pem.Block {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(priv, "me@laptop")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfc4716 writes a key blob as PuTTYgen shows it: headers, then base64 in
// 64-column lines.
func rfc4716(blob []byte, comment string) string {
	b64 := base64.StdEncoding.EncodeToString(blob)
	var sb strings.Builder
	sb.WriteString("---- BEGIN SSH2 PUBLIC KEY ----\r\n")
	sb.WriteString("Comment: " + comment + "\r\n")
	for len(b64) > 64 {
		sb.WriteString(b64[:64] + "\r\n")
		b64 = b64[64:]
	}
	sb.WriteString(b64 + "\r\n---- END SSH2 PUBLIC KEY ----\r\n")
	return sb.String()
}

func TestParsePublicKeyAccepts(t *testing.T) {
	ed := testkit.Ed25519Key(t)
	rsa3072 := testRSAKey(t, 3072)
	long := strings.Repeat("x", 300)
	tests := []struct {
		name        string
		key         ssh.PublicKey
		text        string // defaults to the authorized_keys line with comment "me@laptop"
		wantBits    int
		wantComment string
	}{
		{name: "ed25519", key: ed, wantBits: 256, wantComment: "me@laptop"},
		{name: "ecdsa p256", key: testkit.ECDSAKey(t, 256), wantBits: 256, wantComment: "me@laptop"},
		{name: "ecdsa p384", key: testkit.ECDSAKey(t, 384), wantBits: 384, wantComment: "me@laptop"},
		{name: "ecdsa p521", key: testkit.ECDSAKey(t, 521), wantBits: 521, wantComment: "me@laptop"},
		{name: "rsa 2048", key: testRSAKey(t, 2048), wantBits: 2048, wantComment: "me@laptop"},
		{name: "rsa 16384", key: testRSAKey(t, 16384), wantBits: 16384, wantComment: "me@laptop"},
		{name: "sk ed25519", key: testSKEd25519Key(t), wantBits: 256, wantComment: "me@laptop"},
		{name: "sk ecdsa", key: testSKECDSAKey(t), wantBits: 256, wantComment: "me@laptop"},
		{name: "no comment", key: ed, text: testkit.AuthorizedKey(ed, ""), wantBits: 256},
		{name: "pasted with surrounding blank lines", key: ed, text: "\r\n  " + testkit.AuthorizedKey(ed, "a  b\tc") + "\r\n\n", wantBits: 256, wantComment: "a b c"},
		{name: "control characters dropped from comment", key: ed, text: testkit.AuthorizedKey(ed, "evil\x1b[31m"), wantBits: 256, wantComment: "evil [31m"},
		{name: "long comment shortened", key: ed, text: testkit.AuthorizedKey(ed, long), wantBits: 256, wantComment: long[:200]},
		{name: "rfc4716 quoted comment", key: ed, text: rfc4716(ed.Marshal(), `"rsa-key-20240101"`), wantBits: 256, wantComment: "rsa-key-20240101"},
		{name: "rfc4716 continued comment", key: rsa3072, text: strings.Replace(rfc4716(rsa3072.Marshal(), "x"), "Comment: x", "Comment: \"first \\\r\nsecond\"", 1), wantBits: 3072, wantComment: "first second"},
		{name: "rfc4716 other headers", key: ed, text: strings.Replace(rfc4716(ed.Marshal(), "c"), "Comment: c", "x-private: yes\r\nComment: c", 1), wantBits: 256, wantComment: "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			if text == "" {
				text = testkit.AuthorizedKey(tt.key, "me@laptop")
			}
			got, err := ParsePublicKey(text)
			if err != nil {
				t.Fatalf("ParsePublicKey: %v", err)
			}
			if got.Algorithm != tt.key.Type() || got.Bits != tt.wantBits || got.Comment != tt.wantComment {
				t.Errorf("got %s %d bits %q, want %s %d bits %q", got.Algorithm, got.Bits, got.Comment, tt.key.Type(), tt.wantBits, tt.wantComment)
			}
			if want := ssh.FingerprintSHA256(tt.key); got.Fingerprint != want {
				t.Errorf("fingerprint %s, want %s", got.Fingerprint, want)
			}
		})
	}
}

func TestParsePublicKeyRefuses(t *testing.T) {
	ed := testkit.Ed25519Key(t)
	edLine := testkit.AuthorizedKey(ed, "me@laptop")
	rsaLine := testkit.AuthorizedKey(testRSAKey(t, 2048), "")
	edB64 := base64.StdEncoding.EncodeToString(ed.Marshal())
	tests := []struct {
		name, text, wantMessage string
	}{
		{"empty", "  \n ", "paste an SSH public key: the contents of your .pub file, e.g. id_ed25519.pub"},
		{"dsa", testkit.DSALine(), "DSA keys are no longer secure; generate an Ed25519 key with ssh-keygen -t ed25519"},
		{"rsa 1024", testkit.AuthorizedKey(testRSAKey(t, 1024), "old"), "this RSA key has only 1024 bits, which is too weak; use at least 2048 bits, or better generate an Ed25519 key with ssh-keygen -t ed25519"},
		{"rsa 2047", testkit.AuthorizedKey(testRSAKey(t, 2047), ""), "this RSA key has only 2047 bits"},
		{"rsa 16385", testkit.AuthorizedKey(testRSAKey(t, 16385), ""), "this RSA key has 16385 bits; at most 16384 are supported"},
		{"openssh private key", string(pem.EncodeToMemory(testPrivateKeyPEM(t))), "this is a private key — never share it; paste the contents of the .pub file"},
		{"pkcs8 private key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----", "this is a private key — never share it"},
		{"rsa private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "this is a private key — never share it"},
		{"putty private key", "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: eddsa-key\nPublic-Lines: 2\n", "this is a private key — never share it"},
		{"two keys", edLine + "\n" + rsaLine, "paste one key at a time: this text has several lines"},
		{"key and junk line", edLine + "\nthanks!", "paste one key at a time"},
		{"options", `command="/bin/date",no-pty ` + edLine, "remove the text before ssh-ed25519: options such as command= or from= do not apply to SFTP keys here"},
		{"restrict option", "restrict " + edLine, "remove the text before ssh-ed25519"},
		{"not a key", "hello there, here is my key", "this is not an SSH public key; it should start with ssh-ed25519, ecdsa-sha2-… or ssh-rsa"},
		{"type only", "ssh-ed25519", "the key is incomplete: the base64 part after ssh-ed25519 is missing"},
		{"bad base64", "ssh-ed25519 AAAA$$$", "the key is damaged (its base64 part does not decode)"},
		{"truncated key", "ssh-ed25519 " + edB64[:len(edB64)-8], "the key is damaged"},
		{"type mismatch", "ssh-rsa " + edB64, "the key is damaged: the line says ssh-rsa but the key in it is ssh-ed25519"},
		{"certificate", "ssh-ed25519-cert-v01@openssh.com " + edB64, "SSH certificates are not supported"},
		{"unknown type", "ssh-foo " + edB64, "keys of type ssh-foo are not supported"},
		{"too long", "ssh-rsa " + strings.Repeat("A", 20000), "this is too long to be an SSH public key"},
		{"rfc4716 without end", strings.TrimSuffix(rfc4716(ed.Marshal(), "c"), "---- END SSH2 PUBLIC KEY ----\r\n"), "the SSH2 public key block is incomplete or damaged"},
		{"rfc4716 then another key", rfc4716(ed.Marshal(), "c") + edLine, "paste one key at a time: there is more text after ---- END SSH2 PUBLIC KEY ----"},
		{"rfc4716 dsa", rfc4716(testkit.DSABlob(), "c"), "DSA keys are no longer secure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePublicKey(tt.text)
			if err == nil {
				t.Fatalf("accepted as %s %s", k.Algorithm, k.Fingerprint)
			}
			if tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != "publicKey" {
				t.Errorf("got %v, want an INVALID error on publicKey", err)
			}
			if msg := tenant.ErrorMessage(err); !strings.HasPrefix(msg, tt.wantMessage) {
				t.Errorf("message %q, want it to start with %q", msg, tt.wantMessage)
			}
		})
	}
}
