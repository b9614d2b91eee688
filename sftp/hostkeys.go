package sftp

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/ssh"
)

// minRSABits is the smallest RSA key accepted as a host key.
const minRSABits = 2048

// rsaSignatureAlgorithms are the only signature algorithms an RSA host key
// may use: SHA-2 (RFC 8332), never SHA-1 "ssh-rsa".
var rsaSignatureAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}

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
