package sftplogin

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/tenant"
)

// HostKeyCipher encrypts host private keys at rest (AES-256-GCM), so that a
// database dump alone does not carry the server's identity. Every node
// needs the same key. A nil *HostKeyCipher stores keys unencrypted and
// reads only unencrypted ones.
type HostKeyCipher struct {
	aead cipher.AEAD
}

// sealedPrefix starts every encrypted private_key; an OpenSSH PEM key
// starts with "-----BEGIN", so the two never mix up.
var sealedPrefix = []byte("skiff-sealed-v1\x00")

var (
	// ErrHostKeysEncrypted: stored host keys are encrypted and no key was given.
	ErrHostKeysEncrypted = errors.New("the stored host keys are encrypted, and no host-key encryption key is set")
	// ErrHostKeyWrongKey: a stored host key does not decrypt with the key given.
	ErrHostKeyWrongKey = errors.New("the stored host keys do not decrypt with the host-key encryption key given: it is not the key they were encrypted with")
)

// ParseHostKeyCipherKey reads a 32-byte key written as base64 (standard or
// URL alphabet, padded or not) or as 64 hex digits; surrounding white space
// is ignored.
func ParseHostKeyCipherKey(text string) (*HostKeyCipher, error) {
	text = strings.TrimSpace(text)
	var key []byte
	if b, err := hex.DecodeString(text); err == nil && len(text) == 64 {
		key = b
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(text); err == nil {
				key = b
				break
			}
		}
	}
	if len(key) != 32 {
		return nil, errors.New("not a 32-byte key in base64 or hex (make one with `openssl rand -base64 32`)")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &HostKeyCipher{aead: aead}, nil
}

// seal encrypts a PEM key of the algorithm; nil c returns it as is.
func (c *HostKeyCipher) seal(algorithm string, pemKey []byte) ([]byte, error) {
	if c == nil {
		return pemKey, nil
	}
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append(bytes.Clone(sealedPrefix), nonce...), c.aead.Seal(nil, nonce, pemKey, []byte(algorithm))...)
	return out, nil
}

// open returns the PEM key a stored private_key holds.
func (c *HostKeyCipher) open(algorithm string, stored []byte) ([]byte, error) {
	rest, sealed := bytes.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return stored, nil
	}
	if c == nil {
		return nil, ErrHostKeysEncrypted
	}
	n := c.aead.NonceSize()
	if len(rest) < n {
		return nil, ErrHostKeyWrongKey
	}
	pemKey, err := c.aead.Open(nil, rest[:n], rest[n:], []byte(algorithm))
	if err != nil {
		return nil, ErrHostKeyWrongKey
	}
	return pemKey, nil
}

// SealStoredHostKeys checks every stored host key against c and, with a
// cipher, encrypts the ones stored unencrypted (keys from before encryption
// was turned on). It returns how many it encrypted and how many are still
// unencrypted (all of them when c is nil). ErrHostKeysEncrypted or
// ErrHostKeyWrongKey when a stored key cannot be read with c.
func (d *Directory) SealStoredHostKeys(ctx context.Context) (sealed, plain int, err error) {
	err = d.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		var rows []struct {
			ID         string `db:"id"`
			Algorithm  string `db:"algorithm"`
			PrivateKey []byte `db:"private_key"`
		}
		if err := tx.SelectContext(ctx, &rows, `SELECT id, algorithm, private_key FROM host_keys ORDER BY id FOR UPDATE`); err != nil {
			return tenant.DBError(err)
		}
		for _, r := range rows {
			pemKey, err := d.Cipher.open(r.Algorithm, r.PrivateKey)
			if err != nil {
				return err
			}
			if bytes.HasPrefix(r.PrivateKey, sealedPrefix) {
				continue
			}
			if d.Cipher == nil {
				plain++
				continue
			}
			out, err := d.Cipher.seal(r.Algorithm, pemKey)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE host_keys SET private_key = $2 WHERE id = $1`, r.ID, out); err != nil {
				return tenant.DBError(err)
			}
			sealed++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("host keys: %w", err)
	}
	return sealed, plain, nil
}
