package domain_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// newHostKeyDB is an empty database: no host keys stored yet.
func newHostKeyDB(t *testing.T) *tenant.DB {
	t.Helper()
	db, err := tenant.Open(context.Background(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func publicKeysOf(signers []ssh.Signer) [][]byte {
	out := make([][]byte, 0, len(signers))
	for _, s := range signers {
		out = append(out, s.PublicKey().Marshal())
	}
	return out
}

func TestHostKeysGeneratedOnceAndShared(t *testing.T) {
	db := newHostKeyDB(t)
	ctx := context.Background()

	// Two nodes starting at once on an empty database end up with the same keys.
	nodes := []*sftplogin.Directory{sftplogin.NewDirectory(db), sftplogin.NewDirectory(db)}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, d := range nodes {
		wg.Go(func() { errs[i] = d.EnsureHostKeys(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	first, err := nodes[0].HostKeys(ctx, sharedDest)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, s := range first {
		types = append(types, s.PublicKey().Type())
	}
	if want := []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"}; !slices.Equal(types, want) {
		t.Fatalf("host key types = %v, want %v", types, want)
	}
	second, err := nodes[1].HostKeys(ctx, sharedDest)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(publicKeysOf(first), publicKeysOf(second), bytes.Equal) {
		t.Error("two nodes starting together present different host keys")
	}
	var stored int
	if err := db.X.Get(&stored, `SELECT count(*) FROM host_keys`); err != nil || stored != 3 {
		t.Errorf("%d host keys stored (%v), want 3", stored, err)
	}

	// A restart loads the same keys instead of making new ones.
	restarted := sftplogin.NewDirectory(db)
	if err := restarted.EnsureHostKeys(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := restarted.HostKeys(ctx, sharedDest)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(publicKeysOf(first), publicKeysOf(again), bytes.Equal) {
		t.Error("host keys changed across a restart")
	}

	// The RSA key signs with SHA-2 only, and its signatures verify.
	rsaSigner, ok := again[2].(ssh.MultiAlgorithmSigner)
	if !ok {
		t.Fatalf("RSA host key signer is a %T, want a MultiAlgorithmSigner", again[2])
	}
	if algos := rsaSigner.Algorithms(); slices.Contains(algos, ssh.KeyAlgoRSA) || !slices.Contains(algos, ssh.KeyAlgoRSASHA256) {
		t.Errorf("RSA host key signs with %v", algos)
	}
	if _, err := rsaSigner.SignWithAlgorithm(rand.Reader, []byte("x"), ssh.KeyAlgoRSA); err == nil {
		t.Error("RSA host key made a SHA-1 signature")
	}
	for _, s := range again {
		sig, err := s.Sign(rand.Reader, []byte("session hash"))
		if err != nil {
			t.Fatalf("%s: %v", s.PublicKey().Type(), err)
		}
		if err := s.PublicKey().Verify([]byte("session hash"), sig); err != nil {
			t.Errorf("%s signature does not verify: %v", s.PublicKey().Type(), err)
		}
	}
}

func TestHostKeyFingerprints(t *testing.T) {
	f := newModuleFixture(t)
	ctx := context.Background()
	// The fixture stores a stand-in key; start from real ones.
	if _, err := f.svc.DB.X.Exec(`DELETE FROM host_keys`); err != nil {
		t.Fatal(err)
	}
	// A server that skipped EnsureHostKeys still gets keys, the same ones
	// on every call.
	d := sftplogin.NewDirectory(f.svc.DB)
	signers, err := d.HostKeys(ctx, sharedDest)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := d.HostKeys(ctx, sharedDest); err != nil || !slices.EqualFunc(publicKeysOf(signers), publicKeysOf(again), bytes.Equal) {
		t.Errorf("second HostKeys differs (%v)", err)
	}

	// Deployment fingerprints are public, in the order the server presents the keys.
	fps, err := f.svc.DedicatedIPs.HostKeyFingerprints(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(fps) != len(signers) {
		t.Fatalf("%d fingerprints for %d host keys", len(fps), len(signers))
	}
	for i, s := range signers {
		want := outbox.HostKeyFingerprint{Algorithm: s.PublicKey().Type(), Fingerprint: ssh.FingerprintSHA256(s.PublicKey())}
		if fps[i] != want {
			t.Errorf("fingerprint %d = %+v, want %+v", i, fps[i], want)
		}
	}

	// An account has no keys of its own until it has a dedicated IP; only
	// its users and staff may ask.
	for name, ctx := range map[string]context.Context{"owner": f.ownerCtx, "staff": f.staff} {
		if fps, err := f.svc.DedicatedIPs.HostKeyFingerprints(ctx, f.account.ID); err != nil || len(fps) != 0 {
			t.Errorf("%s asks for the account's keys: %v, %v", name, fps, err)
		}
	}
	_, other := f.newAccount("Globex", "gus@globex.test")
	for name, id := range map[string]string{"another account": other.AccountID, "a malformed ID": "nope"} {
		if _, err := f.svc.DedicatedIPs.HostKeyFingerprints(f.ownerCtx, id); tenant.ErrorCode(err) != tenant.ENotFound || tenant.ErrorMessage(err) != "account not found" {
			t.Errorf("owner asks for %s's keys: got %v, want account not found", name, err)
		}
	}
}
