package tenant

import (
	"context"
	"strings"
)

// MarkKeyUsedByFingerprint records that the user's key with this SHA256
// fingerprint just logged in (the SSH server knows the verified key's
// fingerprint, not our key ID). See MarkKeyUsed for the rules.
func (d *Directory) MarkKeyUsedByFingerprint(ctx context.Context, accountID, userID, fingerprint string) error {
	if !isUUID(accountID) || !isUUID(userID) || !strings.HasPrefix(fingerprint, "SHA256:") {
		return nil
	}
	now := d.now()
	return d.DB.CrossTenant(ctx, ScopeDirectory, func(tx *sqlxTx) error {
		_, err := tx.ExecContext(ctx, `UPDATE ssh_keys SET last_used_at = $4
			WHERE account_id = $1 AND user_id = $2 AND fingerprint = $3 AND (last_used_at IS NULL OR last_used_at < $5)`,
			accountID, userID, fingerprint, now, now.Add(-keyUseGranularity))
		return dbError(err)
	})
}
