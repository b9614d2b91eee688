package sftp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/crypto/ssh"
)

// rsaHostKeyBits is the size of generated RSA host keys: 3072 bits gives
// about 128-bit security, in line with the other two key types.
const rsaHostKeyBits = 3072

// minRSABits is the smallest RSA key accepted as a host key.
const minRSABits = 2048

// rsaSignatureAlgorithms are the only signature algorithms an RSA host key
// may use: SHA-2 (RFC 8332), never SHA-1 "ssh-rsa".
var rsaSignatureAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}

// hostKeyKind is one type of host key this package generates.
type hostKeyKind struct {
	name     string // file-name part, as OpenSSH names its host keys
	generate func() (crypto.Signer, error)
}

// hostKeyKinds lists the generated host key types, Ed25519 first since it
// is what current clients prefer.
var hostKeyKinds = []hostKeyKind{
	{"ed25519", func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
	{"ecdsa", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
	{"rsa", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, rsaHostKeyBits) }},
}

// GenerateHostKeys makes a fresh set of host keys: Ed25519, ECDSA P-256 and
// RSA 3072, each as an OpenSSH-format PEM private key ready to be stored.
// Generating the RSA key takes a noticeable fraction of a second.
func GenerateHostKeys() ([][]byte, error) {
	keys := make([][]byte, 0, len(hostKeyKinds))
	for _, kind := range hostKeyKinds {
		pemBytes, err := generateHostKey(kind)
		if err != nil {
			return nil, err
		}
		keys = append(keys, pemBytes)
	}
	return keys, nil
}

func generateHostKey(kind hostKeyKind) ([]byte, error) {
	key, err := kind.generate()
	if err != nil {
		return nil, fmt.Errorf("sftp: generate %s host key: %w", kind.name, err)
	}
	block, err := ssh.MarshalPrivateKey(key, "skiff host key")
	if err != nil {
		return nil, fmt.Errorf("sftp: encode %s host key: %w", kind.name, err)
	}
	return pem.EncodeToMemory(block), nil
}

// ParseHostKeys turns PEM private keys (as made by GenerateHostKeys, or any
// unencrypted key ssh-keygen writes) into signers ready to present. RSA
// signers are restricted to rsa-sha2-512/256; DSA and RSA keys under 2048
// bits are refused.
func ParseHostKeys(pemKeys [][]byte) ([]ssh.Signer, error) {
	signers := make([]ssh.Signer, 0, len(pemKeys))
	for i, p := range pemKeys {
		s, err := ssh.ParsePrivateKey(p)
		if err != nil {
			return nil, fmt.Errorf("sftp: host key %d: %w", i, err)
		}
		s, err = hostKeySigner(s)
		if err != nil {
			return nil, fmt.Errorf("sftp: host key %d: %w", i, err)
		}
		signers = append(signers, s)
	}
	return signers, nil
}

// hostKeySigner checks that s is a host key the server may present and,
// for RSA, restricts it to SHA-2 signatures. The server applies it to every
// signer a HostKeys store returns, so a store cannot bring back SHA-1.
func hostKeySigner(s ssh.Signer) (ssh.Signer, error) {
	pub := s.PublicKey()
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return s, nil
	case ssh.KeyAlgoRSA:
	default:
		return nil, fmt.Errorf("host key type %q is not allowed", pub.Type())
	}
	if cpk, ok := pub.(ssh.CryptoPublicKey); ok {
		if rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA host key has %d bits, at least %d are required", rk.N.BitLen(), minRSABits)
		}
	}
	algos := rsaSignatureAlgorithms
	if m, ok := s.(ssh.MultiAlgorithmSigner); ok {
		// Already restricted: keep only its SHA-2 algorithms.
		algos = slices.DeleteFunc(slices.Clone(m.Algorithms()), func(a string) bool {
			return !slices.Contains(rsaSignatureAlgorithms, a)
		})
		if len(algos) == 0 {
			return nil, errors.New("RSA host key signer allows no SHA-2 signature algorithm")
		}
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return nil, errors.New("RSA host key signer cannot make SHA-2 signatures")
	}
	return ssh.NewSignerWithAlgorithms(as, algos)
}

// HostKeyFingerprint describes one host key for users to check on first
// connection.
type HostKeyFingerprint struct {
	// Algorithm is the key type as OpenSSH names it in known_hosts:
	// ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa (an RSA key; the server
	// still signs only with SHA-2).
	Algorithm string
	// SHA256 is the fingerprint as "SHA256:<base64>", as ssh-keygen -l and
	// the OpenSSH client show it.
	SHA256 string
}

// Fingerprints returns the fingerprint of each signer's public key, in order.
func Fingerprints(signers []ssh.Signer) []HostKeyFingerprint {
	out := make([]HostKeyFingerprint, 0, len(signers))
	for _, s := range signers {
		pub := s.PublicKey()
		out = append(out, HostKeyFingerprint{Algorithm: pub.Type(), SHA256: ssh.FingerprintSHA256(pub)})
	}
	return out
}

// HostKeyDir is a host-key store kept as files in a directory, named like
// OpenSSH's (ssh_host_ed25519_key, ssh_host_ecdsa_key, ssh_host_rsa_key).
// Missing keys are generated on open and kept across restarts. It presents
// the same keys on every destination. It serves tests, single-node setups
// and the fallback when no database store is configured.
type HostKeyDir struct {
	signers []ssh.Signer
}

var _ HostKeys = (*HostKeyDir)(nil)

// OpenHostKeyDir loads the host keys in dir, creating dir (0700) and any
// missing key (0600) first. Several processes may open the same directory
// at once: a key file is published with a hard link, which fails if another
// process got there first, and then that process's key is used.
func OpenHostKeyDir(dir string) (*HostKeyDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sftp: host key directory: %w", err)
	}
	pems := make([][]byte, 0, len(hostKeyKinds))
	for _, kind := range hostKeyKinds {
		path := filepath.Join(dir, "ssh_host_"+kind.name+"_key")
		p, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			p, err = createHostKeyFile(dir, path, kind)
		}
		if err != nil {
			return nil, fmt.Errorf("sftp: host key %s: %w", path, err)
		}
		pems = append(pems, p)
	}
	signers, err := ParseHostKeys(pems)
	if err != nil {
		return nil, err
	}
	return &HostKeyDir{signers: signers}, nil
}

// createHostKeyFile generates a key, writes it to a temporary file and links
// it into place so that no reader ever sees a half-written key.
func createHostKeyFile(dir, path string, kind hostKeyKind) ([]byte, error) {
	p, err := generateHostKey(kind)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-host-key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600, as a private key must be.
	if _, err := tmp.Write(p); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ReadFile(path)
		}
		return nil, err
	}
	return p, nil
}

// HostKeys returns the directory's keys whatever the destination.
func (d *HostKeyDir) HostKeys(context.Context, netip.Addr) ([]ssh.Signer, error) {
	return d.signers, nil
}

// Signers returns the keys, e.g. to print their fingerprints at start-up.
func (d *HostKeyDir) Signers() []ssh.Signer {
	return slices.Clone(d.signers)
}
