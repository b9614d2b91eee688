package tenant

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
)

func testEd25519Key(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return mustSSHKey(t, pub)
}

func testECDSAKey(t testing.TB, bits int) ssh.PublicKey {
	t.Helper()
	curve := map[int]elliptic.Curve{256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[bits]
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return mustSSHKey(t, &k.PublicKey)
}

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
	return mustSSHKey(t, &rsa.PublicKey{N: n, E: 65537})
}

func mustSSHKey(t testing.TB, pub any) ssh.PublicKey {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
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

// testDSALine is an ssh-dss authorized_keys line; x/crypto no longer parses DSA keys.
func testDSALine() string {
	return ssh.InsecureKeyAlgoDSA + " " + base64.StdEncoding.EncodeToString(testDSABlob()) + " old@host"
}

func testDSABlob() []byte {
	return ssh.Marshal(struct {
		Type       string
		P, Q, G, Y *big.Int
	}{ssh.InsecureKeyAlgoDSA, big.NewInt(23), big.NewInt(11), big.NewInt(4), big.NewInt(8)})
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

func authorizedKey(k ssh.PublicKey, comment string) string {
	return strings.TrimSpace(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment)
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
	ed := testEd25519Key(t)
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
		{name: "ecdsa p256", key: testECDSAKey(t, 256), wantBits: 256, wantComment: "me@laptop"},
		{name: "ecdsa p384", key: testECDSAKey(t, 384), wantBits: 384, wantComment: "me@laptop"},
		{name: "ecdsa p521", key: testECDSAKey(t, 521), wantBits: 521, wantComment: "me@laptop"},
		{name: "rsa 2048", key: testRSAKey(t, 2048), wantBits: 2048, wantComment: "me@laptop"},
		{name: "rsa 16384", key: testRSAKey(t, 16384), wantBits: 16384, wantComment: "me@laptop"},
		{name: "sk ed25519", key: testSKEd25519Key(t), wantBits: 256, wantComment: "me@laptop"},
		{name: "sk ecdsa", key: testSKECDSAKey(t), wantBits: 256, wantComment: "me@laptop"},
		{name: "no comment", key: ed, text: authorizedKey(ed, ""), wantBits: 256},
		{name: "pasted with surrounding blank lines", key: ed, text: "\r\n  " + authorizedKey(ed, "a  b\tc") + "\r\n\n", wantBits: 256, wantComment: "a b c"},
		{name: "control characters dropped from comment", key: ed, text: authorizedKey(ed, "evil\x1b[31m"), wantBits: 256, wantComment: "evil [31m"},
		{name: "long comment shortened", key: ed, text: authorizedKey(ed, long), wantBits: 256, wantComment: long[:200]},
		{name: "rfc4716 quoted comment", key: ed, text: rfc4716(ed.Marshal(), `"rsa-key-20240101"`), wantBits: 256, wantComment: "rsa-key-20240101"},
		{name: "rfc4716 continued comment", key: rsa3072, text: strings.Replace(rfc4716(rsa3072.Marshal(), "x"), "Comment: x", "Comment: \"first \\\r\nsecond\"", 1), wantBits: 3072, wantComment: "first second"},
		{name: "rfc4716 other headers", key: ed, text: strings.Replace(rfc4716(ed.Marshal(), "c"), "Comment: c", "x-private: yes\r\nComment: c", 1), wantBits: 256, wantComment: "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			if text == "" {
				text = authorizedKey(tt.key, "me@laptop")
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
	ed := testEd25519Key(t)
	edLine := authorizedKey(ed, "me@laptop")
	rsaLine := authorizedKey(testRSAKey(t, 2048), "")
	edB64 := base64.StdEncoding.EncodeToString(ed.Marshal())
	tests := []struct {
		name, text, wantMessage string
	}{
		{"empty", "  \n ", "paste an SSH public key: the contents of your .pub file, e.g. id_ed25519.pub"},
		{"dsa", testDSALine(), "DSA keys are no longer secure; generate an Ed25519 key with ssh-keygen -t ed25519"},
		{"rsa 1024", authorizedKey(testRSAKey(t, 1024), "old"), "this RSA key has only 1024 bits, which is too weak; use at least 2048 bits, or better generate an Ed25519 key with ssh-keygen -t ed25519"},
		{"rsa 2047", authorizedKey(testRSAKey(t, 2047), ""), "this RSA key has only 2047 bits"},
		{"rsa 16385", authorizedKey(testRSAKey(t, 16385), ""), "this RSA key has 16385 bits; at most 16384 are supported"},
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
		{"rfc4716 dsa", rfc4716(testDSABlob(), "c"), "DSA keys are no longer secure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePublicKey(tt.text)
			if err == nil {
				t.Fatalf("accepted as %s %s", k.Algorithm, k.Fingerprint)
			}
			if ErrorCode(err) != EInvalid || ErrorField(err) != "publicKey" {
				t.Errorf("got %v, want an INVALID error on publicKey", err)
			}
			if msg := ErrorMessage(err); !strings.HasPrefix(msg, tt.wantMessage) {
				t.Errorf("message %q, want it to start with %q", msg, tt.wantMessage)
			}
		})
	}
}

// keyFixture is an account with an owner, an administrator and two users,
// plus a second account, for the SSH key service.
type keyFixture struct {
	*moduleFixture
	admin, uma, vic *User
	other           *User // owner of another account
}

func newKeyFixture(t *testing.T) *keyFixture {
	t.Helper()
	f := &keyFixture{moduleFixture: newModuleFixture(t)}
	f.admin = f.newUser("ada@acme.test", RoleAdmin)
	f.uma = f.newUser("uma@acme.test", RoleUser)
	f.vic = f.newUser("vic@acme.test", RoleUser)
	_, f.other = f.newAccount("Globex", "gus@globex.test")
	return f
}

func (f *keyFixture) addKey(by *User, userID, title string) *SSHKey {
	f.t.Helper()
	k, err := f.svc.AddSSHKey(f.as(by), userID, title, authorizedKey(testEd25519Key(f.t), "me@laptop"))
	if err != nil {
		f.t.Fatalf("%s adds a key for %s: %v", by.Email, userID, err)
	}
	return k
}

// wantNotFound checks the error is exactly the one a missing object gives.
func (f *keyFixture) wantNotFound(err error, what, doing string) {
	f.t.Helper()
	if ErrorCode(err) != ENotFound || ErrorMessage(err) != what+" not found" {
		f.t.Errorf("%s: got %v, want %q not found", doing, err, what)
	}
}

// auditKinds returns the audit trail's ssh_key events for a key, oldest first.
func (f *keyFixture) auditKinds(keyID string) []string {
	f.t.Helper()
	var kinds []string
	if err := f.svc.DB.X.Select(&kinds, `SELECT kind FROM audit_events WHERE target_id = $1 ORDER BY at, kind`, keyID); err != nil {
		f.t.Fatal(err)
	}
	return kinds
}

func TestAddSSHKey(t *testing.T) {
	f := newKeyFixture(t)
	key := testEd25519Key(t)
	k, err := f.svc.AddSSHKey(f.as(f.uma), f.uma.ID, "  Work laptop  ", authorizedKey(key, "uma@laptop"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Title != "Work laptop" || k.UserID != f.uma.ID || k.AccountID != f.account.ID || k.Algorithm != "ssh-ed25519" ||
		k.Bits != 256 || k.Fingerprint != ssh.FingerprintSHA256(key) || k.Comment != "uma@laptop" ||
		k.CreatedBy != f.uma.Name || k.LastUsedAt != nil || !k.CreatedAt.Equal(f.now) {
		t.Errorf("added key = %+v", k)
	}
	keys, err := f.svc.SSHKeys(f.as(f.uma), f.uma.ID)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID || keys[0].Title != "Work laptop" {
		t.Fatalf("uma's keys = %+v, %v; want the added key", keys, err)
	}
	if got := f.auditKinds(k.ID); len(got) != 1 || got[0] != "ssh_key.added" {
		t.Errorf("audit trail = %v, want ssh_key.added", got)
	}

	// The user is told, with what they need to recognise the key.
	mails := f.emailsTo(EmailSSHKeyAdded, "uma@acme.test")
	if len(mails) != 1 {
		t.Fatalf("%d key emails to uma, want 1", len(mails))
	}
	d := mails[0].Data
	if d["Title"] != "Work laptop" || d["Fingerprint"] != k.Fingerprint || d["Algorithm"] != "ssh-ed25519" ||
		d["AddedBy"] != f.uma.Name || d["UserName"] != f.uma.Name || d["AccountName"] != "Acme" {
		t.Errorf("email data = %v", d)
	}

	// The same key again on the same user is a user error naming the field.
	_, err = f.svc.AddSSHKey(f.as(f.admin), f.uma.ID, "Again", authorizedKey(key, "other comment"))
	if ErrorCode(err) != EConflict || ErrorField(err) != "publicKey" || ErrorMessage(err) != "this key is already added to this user" {
		t.Errorf("duplicate key: got %v", err)
	}
	// On another user it is allowed: logins name the user, so nothing is ambiguous.
	if _, err := f.svc.AddSSHKey(f.as(f.admin), f.vic.ID, "Shared", authorizedKey(key, "")); err != nil {
		t.Errorf("same key on another user: %v", err)
	}

	// Refused input changes nothing and sends nothing.
	for _, tt := range []struct{ title, key, field string }{
		{"   ", authorizedKey(testEd25519Key(t), ""), "title"},
		{strings.Repeat("t", 201), authorizedKey(testEd25519Key(t), ""), "title"},
		{"Bell\a", authorizedKey(testEd25519Key(t), ""), "title"},
		{"Old", testDSALine(), "publicKey"},
	} {
		if _, err := f.svc.AddSSHKey(f.as(f.uma), f.uma.ID, tt.title, tt.key); ErrorCode(err) != EInvalid || ErrorField(err) != tt.field {
			t.Errorf("title %q: got %v, want INVALID on %s", tt.title, err, tt.field)
		}
	}
	if keys, _ := f.svc.SSHKeys(f.as(f.uma), f.uma.ID); len(keys) != 1 {
		t.Errorf("uma has %d keys after refusals, want 1", len(keys))
	}
	if n := len(f.emailsTo(EmailSSHKeyAdded, "uma@acme.test")); n != 1 {
		t.Errorf("%d key emails to uma after refusals, want 1", n)
	}
}

func TestSSHKeyPermissions(t *testing.T) {
	f := newKeyFixture(t)
	umaKey := f.addKey(f.uma, f.uma.ID, "Uma's own")
	f.addKey(f.admin, f.vic.ID, "Added by the admin")
	f.advance(time.Second) // keys list oldest first
	f.addKey(f.owner, f.uma.ID, "Added by the owner")
	otherKey := f.addKey(f.other, f.other.ID, "Globex key")
	random := uuid.NewString()

	// A user cannot reach another user's keys; another account cannot reach
	// any; and each looks exactly like something that does not exist.
	for _, tt := range []struct {
		name   string
		by     *User
		userID string
	}{
		{"user for another user", f.uma, f.vic.ID},
		{"another account's owner", f.other, f.uma.ID},
		{"owner for another account's user", f.owner, f.other.ID},
		{"unknown user", f.owner, random},
		{"malformed user ID", f.owner, "not-an-id"},
	} {
		_, err := f.svc.AddSSHKey(f.as(tt.by), tt.userID, "Mine now", authorizedKey(testEd25519Key(t), ""))
		f.wantNotFound(err, "user", tt.name+": add")
		_, err = f.svc.SSHKeys(f.as(tt.by), tt.userID)
		f.wantNotFound(err, "user", tt.name+": list")
	}
	for _, tt := range []struct {
		name  string
		by    *User
		keyID string
	}{
		{"user on another user's key", f.vic, umaKey.ID},
		{"another account's owner", f.other, umaKey.ID},
		{"owner on another account's key", f.owner, otherKey.ID},
		{"unknown key", f.owner, random},
		{"malformed key ID", f.owner, "42"},
	} {
		_, err := f.svc.RenameSSHKey(f.as(tt.by), tt.keyID, "Hijacked")
		f.wantNotFound(err, "SSH key", tt.name+": rename")
		_, err = f.svc.DeleteSSHKey(f.as(tt.by), tt.keyID)
		f.wantNotFound(err, "SSH key", tt.name+": delete")
	}
	if keys, _ := f.svc.SSHKeys(f.as(f.uma), f.uma.ID); len(keys) != 2 || keys[0].Title != "Uma's own" {
		t.Errorf("uma's keys after refused changes = %+v", keys)
	}

	// Owners and administrators manage anyone's keys in their account; users their own.
	if k, err := f.svc.RenameSSHKey(f.as(f.admin), umaKey.ID, " Renamed by admin "); err != nil || k.Title != "Renamed by admin" {
		t.Errorf("admin renames uma's key: %+v, %v", k, err)
	}
	if k, err := f.svc.RenameSSHKey(f.as(f.uma), umaKey.ID, "Laptop"); err != nil || k.Title != "Laptop" || k.Fingerprint != umaKey.Fingerprint {
		t.Errorf("uma renames her key: %+v, %v", k, err)
	}
	if _, err := f.svc.RenameSSHKey(f.as(f.uma), umaKey.ID, ""); ErrorCode(err) != EInvalid || ErrorField(err) != "title" {
		t.Errorf("empty title: got %v, want INVALID on title", err)
	}
	vicKeys, err := f.svc.SSHKeys(f.as(f.owner), f.vic.ID)
	if err != nil || len(vicKeys) != 1 {
		t.Fatalf("owner lists vic's keys: %+v, %v", vicKeys, err)
	}
	if k, err := f.svc.DeleteSSHKey(f.as(f.owner), vicKeys[0].ID); err != nil || k.ID != vicKeys[0].ID {
		t.Errorf("owner deletes vic's key: %+v, %v", k, err)
	}
	if k, err := f.svc.DeleteSSHKey(f.as(f.uma), umaKey.ID); err != nil || k.Title != "Laptop" {
		t.Errorf("uma deletes her key: %+v, %v", k, err)
	}
	_, err = f.svc.DeleteSSHKey(f.as(f.uma), umaKey.ID)
	f.wantNotFound(err, "SSH key", "deleting twice")
	if keys, _ := f.svc.SSHKeys(f.as(f.vic), f.vic.ID); len(keys) != 0 {
		t.Errorf("vic still has %d keys", len(keys))
	}
	want := []string{"ssh_key.added", "ssh_key.renamed", "ssh_key.renamed", "ssh_key.deleted"}
	if got := f.auditKinds(umaKey.ID); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit trail of uma's key = %v, want %v", got, want)
	}

	// Renaming to the same title is not a change.
	k := f.addKey(f.uma, f.uma.ID, "Same")
	if _, err := f.svc.RenameSSHKey(f.as(f.uma), k.ID, "Same"); err != nil {
		t.Fatal(err)
	}
	if got := f.auditKinds(k.ID); len(got) != 1 {
		t.Errorf("renaming to the same title was audited: %v", got)
	}

	// A deleted user gets no new keys.
	if _, err := f.svc.DeleteUser(f.ownerCtx, f.vic.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AddSSHKey(f.as(f.admin), f.vic.ID, "Too late", authorizedKey(testEd25519Key(t), ""))
	f.wantNotFound(err, "user", "adding a key to a deleted user")

	// Staff and anonymous callers are not account users.
	if _, err := f.svc.AddSSHKey(f.staff, f.uma.ID, "Support", authorizedKey(testEd25519Key(t), "")); ErrorCode(err) != EForbidden {
		t.Errorf("staff adds a key: got %v, want FORBIDDEN", err)
	}
	if _, err := f.svc.SSHKeys(context.Background(), f.uma.ID); ErrorCode(err) != EUnauthenticated {
		t.Errorf("anonymous lists keys: got %v, want UNAUTHENTICATED", err)
	}
}

func TestSSHKeysForUsers(t *testing.T) {
	f := newKeyFixture(t)
	u1 := f.addKey(f.uma, f.uma.ID, "First")
	f.advance(time.Second)
	u2 := f.addKey(f.uma, f.uma.ID, "Second")
	v1 := f.addKey(f.vic, f.vic.ID, "Vic's")
	ids := []string{f.uma.ID, f.vic.ID, f.admin.ID, f.other.ID, "junk"}

	got, err := f.svc.SSHKeysForUsers(f.as(f.admin), f.account.ID, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[f.uma.ID]) != 2 || got[f.uma.ID][0].ID != u1.ID || got[f.uma.ID][1].ID != u2.ID ||
		len(got[f.vic.ID]) != 1 || got[f.vic.ID][0].ID != v1.ID {
		t.Errorf("admin loads %v", got)
	}
	// A user sees only their own keys in the batch.
	got, err = f.svc.SSHKeysForUsers(f.as(f.vic), f.account.ID, ids)
	if err != nil || len(got) != 1 || len(got[f.vic.ID]) != 1 {
		t.Errorf("vic loads %v, %v; want only his key", got, err)
	}
	// Another account's principal sees nothing.
	got, err = f.svc.SSHKeysForUsers(f.as(f.other), f.account.ID, ids)
	if err != nil || len(got) != 0 {
		t.Errorf("another account loads %v, %v; want nothing", got, err)
	}
}
