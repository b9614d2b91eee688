package sftplogin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"net/netip"
	"slices"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"golang.org/x/crypto/ssh"
)

// hostKeyTypes are the host key types Skiff generates, for the deployment
// and for each account with a dedicated IP, in the order the SSH server
// presents them and users see their fingerprints. Ed25519 comes first
// because current clients prefer it; RSA 3072 is for old ones.
var hostKeyTypes = []struct {
	algorithm string
	generate  func() (crypto.Signer, error)
}{
	{ssh.KeyAlgoED25519, func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
	{ssh.KeyAlgoECDSA256, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
	{ssh.KeyAlgoRSA, func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 3072) }},
}

// hostKeyRank orders host keys as hostKeyTypes does; unknown types last.
func hostKeyRank(algorithm string) int {
	for i, t := range hostKeyTypes {
		if t.algorithm == algorithm {
			return i
		}
	}
	return len(hostKeyTypes)
}

// hostKeyRow is a stored host key: an OpenSSH private key, encrypted when
// the deployment has a HostKeyCipher. Every node must be able to read it.
type hostKeyRow struct {
	Algorithm  string `db:"algorithm"`
	PrivateKey []byte `db:"private_key"`
}

// EnsureHostKeys makes sure the deployment's host keys exist and loads them.
// The first start generates Ed25519, ECDSA P-256 and RSA 3072 keys; later
// starts load them and never generate again, so clients keep trusting the
// server. Nodes starting together are safe: each inserts what it generated
// only where nothing is stored yet, then everyone uses what was stored.
func (d *Directory) EnsureHostKeys(ctx context.Context) error {
	_, err := d.deploymentHostKeys(ctx)
	return err
}

// HostKeys returns the host keys to present to a client that connected to
// dest: the account's own keys when dest is an account's dedicated IP, so
// each tenant has its own server identity there, and the deployment's keys
// (generated on first use if EnsureHostKeys did not run at start-up) on any
// other address, a released dedicated IP included. Which addresses are
// dedicated comes from the Directory's copy (see Listen), so a connection
// costs no query.
func (d *Directory) HostKeys(ctx context.Context, dest netip.Addr) ([]ssh.Signer, error) {
	r, err := d.dedicatedRoute(ctx, dest)
	if err != nil {
		return nil, err
	}
	if r != nil && len(r.signers) > 0 {
		return slices.Clone(r.signers), nil
	}
	return d.deploymentHostKeys(ctx)
}

// accountHostKeys are an account's parsed host keys and the stored keys they
// were parsed from.
type accountHostKeys struct {
	stored  [][]byte
	signers []ssh.Signer
}

// deploymentHostKeys returns the cached signers, loading (and if need be
// generating) them once. The lock makes concurrent first callers wait for
// one load instead of each generating keys.
func (d *Directory) deploymentHostKeys(ctx context.Context) ([]ssh.Signer, error) {
	d.hostKeysMu.Lock()
	defer d.hostKeysMu.Unlock()
	if d.hostKeys != nil {
		return slices.Clone(d.hostKeys), nil
	}
	rows, err := d.readDeploymentHostKeys(ctx)
	if err != nil {
		return nil, err
	}
	have := make([]string, 0, len(rows))
	for _, r := range rows {
		have = append(have, r.Algorithm)
	}
	if missing := missingHostKeyTypes(have); len(missing) > 0 {
		keys, err := generateHostKeys(missing, d.Cipher)
		if err != nil {
			return nil, err
		}
		if err := d.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) error {
			return insertHostKeysTx(ctx, tx, "", keys)
		}); err != nil {
			return nil, err
		}
		if rows, err = d.readDeploymentHostKeys(ctx); err != nil {
			return nil, err
		}
	}
	signers := make([]ssh.Signer, 0, len(rows))
	for _, r := range rows {
		s, err := hostKeySigner(r, d.Cipher)
		if err != nil {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: err}
		}
		signers = append(signers, s)
	}
	d.hostKeys = signers
	return slices.Clone(signers), nil
}

func (d *Directory) readDeploymentHostKeys(ctx context.Context) ([]hostKeyRow, error) {
	var rows []hostKeyRow
	err := d.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) error {
		return tenant.DBError(tx.SelectContext(ctx, &rows, `SELECT algorithm, private_key FROM host_keys WHERE account_id IS NULL`))
	})
	slices.SortFunc(rows, func(a, b hostKeyRow) int { return hostKeyRank(a.Algorithm) - hostKeyRank(b.Algorithm) })
	return rows, err
}

// missingHostKeyTypes lists the types of hostKeyTypes not among have.
func missingHostKeyTypes(have []string) []string {
	var missing []string
	for _, t := range hostKeyTypes {
		if !slices.Contains(have, t.algorithm) {
			missing = append(missing, t.algorithm)
		}
	}
	return missing
}

// generatedHostKey is a new host key, ready to be stored.
type generatedHostKey struct {
	algorithm, fingerprint string
	pem                    []byte
}

// generateHostKeys makes keys of the given types, encrypted with c (nil:
// unencrypted). Callers run it outside any transaction: an RSA key takes a
// noticeable fraction of a second.
func generateHostKeys(algorithms []string, c *HostKeyCipher) ([]generatedHostKey, error) {
	var keys []generatedHostKey
	for _, t := range hostKeyTypes {
		if !slices.Contains(algorithms, t.algorithm) {
			continue
		}
		k, err := t.generate()
		if err != nil {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("generate %s host key: %w", t.algorithm, err)}
		}
		block, err := ssh.MarshalPrivateKey(k, "skiff host key")
		if err != nil {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("encode %s host key: %w", t.algorithm, err)}
		}
		pub, err := ssh.NewPublicKey(k.Public())
		if err != nil {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("%s host public key: %w", t.algorithm, err)}
		}
		stored, err := c.seal(t.algorithm, pem.EncodeToMemory(block))
		if err != nil {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("encrypt %s host key: %w", t.algorithm, err)}
		}
		keys = append(keys, generatedHostKey{t.algorithm, ssh.FingerprintSHA256(pub), stored})
	}
	return keys, nil
}

// insertHostKeysTx stores keys for accountID ("" for the deployment's), each
// unless a key of that type is stored already: another node or request got
// there first (the unique index on account and algorithm decides), and the
// stored key wins, so clients keep trusting it.
func insertHostKeysTx(ctx context.Context, q tenant.Queryer, accountID string, keys []generatedHostKey) error {
	for _, k := range keys {
		if _, err := q.ExecContext(ctx, `INSERT INTO host_keys (account_id, algorithm, private_key, fingerprint)
			VALUES (nullif($1, '')::uuid, $2, $3, $4) ON CONFLICT DO NOTHING`, accountID, k.algorithm, k.pem, k.fingerprint); err != nil {
			return tenant.DBError(err)
		}
	}
	return nil
}

// hostKeySigner parses a stored key. RSA keys sign only with SHA-2
// (rsa-sha2-512/256, RFC 8332): SHA-1 "ssh-rsa" signatures are obsolete.
func hostKeySigner(r hostKeyRow, c *HostKeyCipher) (ssh.Signer, error) {
	pemKey, err := c.open(r.Algorithm, r.PrivateKey)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(pemKey)
	if err != nil {
		return nil, fmt.Errorf("stored %s host key: %w", r.Algorithm, err)
	}
	if got := s.PublicKey().Type(); got != r.Algorithm {
		return nil, fmt.Errorf("stored %s host key holds a %s key", r.Algorithm, got)
	}
	if r.Algorithm != ssh.KeyAlgoRSA {
		return s, nil
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return nil, fmt.Errorf("stored RSA host key cannot choose its signature algorithm")
	}
	return ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256})
}

// HostKeyFingerprints lists the fingerprints of the deployment's host keys
// (accountID "") or of an account's own keys, which provisioning its first
// dedicated IP generates (none before), in the order the server presents
// them, as SFTPEnabledData.HostKeys wants them. Deployment fingerprints are
// public: anyone may read them. An account's are for its users and staff;
// anyone else gets "account not found".
func (s *Service) HostKeyFingerprints(ctx context.Context, accountID string) ([]outbox.HostKeyFingerprint, error) {
	if accountID == "" {
		var fps []outbox.HostKeyFingerprint
		// The directory scope is the one that reads host keys across tenants.
		err := s.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) (err error) {
			fps, err = HostKeyFingerprintsTx(ctx, tx, "")
			return err
		})
		if err != nil {
			return nil, err
		}
		return fps, nil
	}
	m, refused, err := s.HostKeyFingerprintsOf(ctx, []string{accountID})
	return tenant.OneOf(accountID, m, refused, err, "account")
}

// HostKeyFingerprintsOf is HostKeyFingerprints for many accounts' own keys
// in one statement (support staff's page of accounts with their dedicated
// IPs), by account ID: support staff read any account's, in the staff scope,
// a user their own account's; the others are refused with "account not
// found".
func (s *Service) HostKeyFingerprintsOf(ctx context.Context, accountIDs []string) (map[string][]outbox.HostKeyFingerprint, map[string]error, error) {
	p := tenant.PrincipalFrom(ctx)
	out, refused := map[string][]outbox.HostKeyFingerprint{}, map[string]error{}
	var ids []string
	for _, id := range accountIDs {
		if tenant.IsUUID(id) && (p.IsStaff() || p.InAccount(id)) {
			ids = append(ids, id)
			out[id] = []outbox.HostKeyFingerprint{}
		} else {
			refused[id] = tenant.NotFound("account")
		}
	}
	read := func(q tenant.Queryer) error {
		var rows []struct {
			AccountID string `db:"account_id"`
			outbox.HostKeyFingerprint
		}
		if err := q.SelectContext(ctx, &rows, `SELECT account_id, algorithm, fingerprint FROM host_keys
			WHERE account_id = ANY($1::uuid[])`, tenant.UUIDArray(ids)); err != nil {
			return tenant.DBError(err)
		}
		for _, r := range rows {
			out[r.AccountID] = append(out[r.AccountID], r.HostKeyFingerprint)
		}
		for _, fps := range out {
			slices.SortFunc(fps, func(a, b outbox.HostKeyFingerprint) int { return hostKeyRank(a.Algorithm) - hostKeyRank(b.Algorithm) })
		}
		return nil
	}
	var err error
	switch {
	case len(ids) == 0:
	case p.IsStaff():
		err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error { return read(tx) })
	default: // a user passes for their own account only
		err = s.InAccount(ctx, ids[0], read)
	}
	return out, refused, err
}

// HostKeyFingerprintsTx lists the fingerprints of the deployment's host keys
// (accountID "") or of an account's own, inside the caller's transaction, in
// the order the server presents them. The deployment's are readable in any
// scope; an account's in its own scope and the staff and directory ones.
func HostKeyFingerprintsTx(ctx context.Context, q tenant.Queryer, accountID string) ([]outbox.HostKeyFingerprint, error) {
	fps := []outbox.HostKeyFingerprint{}
	if err := q.SelectContext(ctx, &fps, `SELECT algorithm, fingerprint FROM host_keys
		WHERE account_id IS NOT DISTINCT FROM nullif($1, '')::uuid`, accountID); err != nil {
		return nil, tenant.DBError(err)
	}
	slices.SortFunc(fps, func(a, b outbox.HostKeyFingerprint) int { return hostKeyRank(a.Algorithm) - hostKeyRank(b.Algorithm) })
	return fps, nil
}
