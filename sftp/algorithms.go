package sftp

import (
	"fmt"
	"slices"

	"golang.org/x/crypto/ssh"
)

// DefaultAlgorithms returns the algorithms the SSH listener offers. The lists are in the server's order of
// preference, but in SSH the client's preference decides among the
// algorithms both sides offer (RFC 4253 §7.1), so the order matters only for
// clients that prefer what the server prefers.
//
// Key exchange: post-quantum hybrid ML-KEM-768 + X25519 first, then
// Curve25519 (both RFC 8731 names; x/crypto adds the @libssh.org alias
// itself) and the NIST ECDH curves. Finite-field Diffie-Hellman (group14,
// group16, group-exchange) is left out: slow and only needed by clients that
// also lack every curve above. Strict key exchange
// (kex-strict-s-v00@openssh.com, the Terrapin fix) is always announced by
// x/crypto on the server side.
//
// Ciphers: only AEAD ciphers and CTR mode; no CBC, 3DES or RC4. AES-GCM is
// listed first because x/crypto's AES-GCM uses AES-NI/CLMUL on amd64 and
// arm64. chacha20-poly1305 is allowed but not offered by default: x/crypto's
// ChaCha20 has no amd64 assembly, so it costs Skiff about twice the CPU per
// byte, and OpenSSH clients, which prefer it, would pick it every time.
// Without it they pick aes128-ctr with an ETM MAC (their next choice), as
// safe and, on a server with AES-NI, much faster (docs/BENCHMARKS.md). What
// it costs: clients whose own CPU lacks AES instructions (old ARM boards)
// spend more of their CPU; clients that offer only ChaCha20 cannot connect
// (no common client is configured so by default). Config.Ciphers (the
// --sftp-ciphers flag) can offer it again.
//
// MACs: SHA-2 only, encrypt-then-MAC first (used with the CTR ciphers; AEAD
// ciphers carry their own tag). The plain hmac-sha2-256/512 (encrypt-and-MAC)
// follow because libssh2 before 1.11 — curl and PHP on Debian 12 and Ubuntu
// 22.04 — speaks neither AEAD nor ETM; with CTR they have no known practical
// weakness, and Terrapin does not apply to them. Config.MACs can drop them
// (StrictMACs). No SHA-1, no MD5.
//
// Host keys: Ed25519, ECDSA P-256 and RSA (3072 bits when generated here).
// RSA host keys sign only with rsa-sha2-512 and rsa-sha2-256, never with
// SHA-1 ssh-rsa; DSA and RSA keys under 2048 bits are refused.
//
// User public keys: Ed25519, ECDSA, FIDO security keys (sk-*), and RSA with
// SHA-2 signatures. ssh-rsa (SHA-1) and ssh-dss signatures, and user
// certificates, are refused.
func DefaultAlgorithms() ssh.Algorithms {
	return ssh.Algorithms{
		KeyExchanges:   slices.Clone(keyExchanges),
		Ciphers:        slices.Clone(defaultCiphers),
		MACs:           slices.Clone(macs),
		HostKeys:       slices.Clone(hostKeyAlgorithms),
		PublicKeyAuths: slices.Clone(publicKeyAuthAlgorithms),
	}
}

var (
	keyExchanges = []string{
		ssh.KeyExchangeMLKEM768X25519, // mlkem768x25519-sha256
		ssh.KeyExchangeCurve25519,     // curve25519-sha256 (+ curve25519-sha256@libssh.org)
		ssh.KeyExchangeECDHP256,       // ecdh-sha2-nistp256
		ssh.KeyExchangeECDHP384,       // ecdh-sha2-nistp384
		ssh.KeyExchangeECDHP521,       // ecdh-sha2-nistp521
	}

	// Config.Ciphers may choose among these, in any order; nothing else.
	ciphers = []string{
		ssh.CipherAES128GCM,        // aes128-gcm@openssh.com
		ssh.CipherAES256GCM,        // aes256-gcm@openssh.com
		ssh.CipherChaCha20Poly1305, // chacha20-poly1305@openssh.com
		ssh.CipherAES128CTR,        // aes128-ctr
		ssh.CipherAES192CTR,        // aes192-ctr
		ssh.CipherAES256CTR,        // aes256-ctr
	}

	// What is offered when Config.Ciphers is empty: all but ChaCha20.
	defaultCiphers = slices.DeleteFunc(slices.Clone(ciphers), func(c string) bool { return c == ssh.CipherChaCha20Poly1305 })

	// Config.MACs may reorder or drop these, not add others.
	macs = []string{
		ssh.HMACSHA256ETM, // hmac-sha2-256-etm@openssh.com
		ssh.HMACSHA512ETM, // hmac-sha2-512-etm@openssh.com
		ssh.HMACSHA256,    // hmac-sha2-256 (libssh2 < 1.11)
		ssh.HMACSHA512,    // hmac-sha2-512 (libssh2 < 1.11)
	}

	hostKeyAlgorithms = []string{
		ssh.KeyAlgoED25519,   // ssh-ed25519
		ssh.KeyAlgoECDSA256,  // ecdsa-sha2-nistp256
		ssh.KeyAlgoECDSA384,  // ecdsa-sha2-nistp384 (keys from another store)
		ssh.KeyAlgoECDSA521,  // ecdsa-sha2-nistp521 (keys from another store)
		ssh.KeyAlgoRSASHA512, // rsa-sha2-512
		ssh.KeyAlgoRSASHA256, // rsa-sha2-256
	}

	publicKeyAuthAlgorithms = []string{
		ssh.KeyAlgoED25519,    // ssh-ed25519
		ssh.KeyAlgoSKED25519,  // sk-ssh-ed25519@openssh.com
		ssh.KeyAlgoECDSA256,   // ecdsa-sha2-nistp256
		ssh.KeyAlgoECDSA384,   // ecdsa-sha2-nistp384
		ssh.KeyAlgoECDSA521,   // ecdsa-sha2-nistp521
		ssh.KeyAlgoSKECDSA256, // sk-ecdsa-sha2-nistp256@openssh.com
		ssh.KeyAlgoRSASHA512,  // rsa-sha2-512
		ssh.KeyAlgoRSASHA256,  // rsa-sha2-256
	}
)

// AllowedCiphers are the ciphers Config.Ciphers may offer, in Skiff's order
// of preference: DefaultAlgorithms().Ciphers plus chacha20-poly1305.
func AllowedCiphers() []string { return slices.Clone(ciphers) }

// StrictMACs are the encrypt-then-MAC algorithms alone, for deployments
// that can turn away clients on libssh2 older than 1.11.
var StrictMACs = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM}

// checkAllowed returns the list to offer: the defaults when none are
// configured, otherwise the configured ones, which must all be allowed so a
// configuration cannot bring back CBC, RC4 or SHA-1.
func checkAllowed(kind string, configured, allowed, defaults []string) ([]string, error) {
	if len(configured) == 0 {
		return slices.Clone(defaults), nil
	}
	for _, c := range configured {
		if !slices.Contains(allowed, c) {
			return nil, fmt.Errorf("sftp: %s %q is not allowed (allowed: %v)", kind, c, allowed)
		}
	}
	return slices.Clone(configured), nil
}
