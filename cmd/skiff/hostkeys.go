package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// HostKeyFlags say how the SFTP host private keys are kept in the database.
type HostKeyFlags struct {
	Key     string `name:"host-key-encryption-key" env:"SKIFF_HOST_KEY_ENCRYPTION_KEY" help:"32-byte key (base64 or hex; openssl rand -base64 32) that encrypts the SFTP host private keys in the database, so a dump alone does not carry them. The same on every node; keys stored unencrypted are encrypted at start. Empty: stored unencrypted (a warning)."`
	KeyFile string `name:"host-key-encryption-key-file" env:"SKIFF_HOST_KEY_ENCRYPTION_KEY_FILE" type:"path" help:"File holding --host-key-encryption-key (for secrets mounted as files)."`
}

// cipher is the configured cipher, nil when none is.
func (f HostKeyFlags) cipher() (*sftplogin.HostKeyCipher, error) {
	text := f.Key
	switch {
	case f.Key != "" && f.KeyFile != "":
		return nil, settingError("--host-key-encryption-key-file", "SKIFF_HOST_KEY_ENCRYPTION_KEY_FILE", "set, and so is --host-key-encryption-key (SKIFF_HOST_KEY_ENCRYPTION_KEY): set one")
	case f.KeyFile != "":
		b, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return nil, settingError("--host-key-encryption-key-file", "SKIFF_HOST_KEY_ENCRYPTION_KEY_FILE", "%v", err)
		}
		text = string(b)
	case f.Key == "":
		return nil, nil
	}
	c, err := sftplogin.ParseHostKeyCipherKey(text)
	if err != nil {
		if f.KeyFile != "" {
			return nil, settingError("--host-key-encryption-key-file", "SKIFF_HOST_KEY_ENCRYPTION_KEY_FILE", "%s: %v", f.KeyFile, err)
		}
		return nil, settingError("--host-key-encryption-key", "SKIFF_HOST_KEY_ENCRYPTION_KEY", "%v", err)
	}
	return c, nil
}

// loadDirectory is the SFTP login directory with the host keys (made on the
// first start, encrypted with the configured key, stored ones checked
// against it) and the dedicated IPs in use. Routing by dedicated IP reads
// the directory's copy of them, which listenDedicatedIPs keeps current;
// changes made through this node apply at once.
func (f HostKeyFlags) loadDirectory(ctx context.Context, log *slog.Logger, db *tenant.DB, svc *domain.Domain) (*sftplogin.Directory, error) {
	c, err := f.cipher()
	if err != nil {
		return nil, err
	}
	dir := sftplogin.NewDirectory(db)
	dir.Cipher, svc.DedicatedIPs.HostKeyCipher = c, c
	sealed, plain, err := dir.SealStoredHostKeys(ctx)
	switch {
	case errors.Is(err, sftplogin.ErrHostKeysEncrypted):
		return nil, settingError("--host-key-encryption-key", "SKIFF_HOST_KEY_ENCRYPTION_KEY", "%v: set it (or --host-key-encryption-key-file) to the key the other nodes use", sftplogin.ErrHostKeysEncrypted)
	case errors.Is(err, sftplogin.ErrHostKeyWrongKey):
		return nil, settingError("--host-key-encryption-key", "SKIFF_HOST_KEY_ENCRYPTION_KEY", "%v; use the key the other nodes use", sftplogin.ErrHostKeyWrongKey)
	case err != nil:
		return nil, err
	case sealed > 0:
		log.Info("encrypted the stored SFTP host keys", "count", sealed)
	case c == nil:
		log.Warn("SFTP host private keys are stored unencrypted in the database, so a database dump carries them: set --host-key-encryption-key-file (SKIFF_HOST_KEY_ENCRYPTION_KEY_FILE) on every node", "unencrypted", plain)
	}
	if err := dir.EnsureHostKeys(ctx); err != nil {
		return nil, fmt.Errorf("host keys: %w", err)
	}
	if err := dir.LoadDedicatedIPs(ctx); err != nil {
		return nil, fmt.Errorf("dedicated IPs: %w", err)
	}
	return dir, nil
}
