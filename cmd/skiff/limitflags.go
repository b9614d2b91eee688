package main

import (
	"time"
)

// Limit flags never read 0 as "the default" or a negative value as "no
// limit" by accident: an operator who types 0 auth tries gets an error, not
// six, and never an unlimited server. A count, size or timeout must be at
// least 1 (to lift a limit, give a large value); only the flags whose help
// gives 0 a meaning (--shutdown-grace, --purge-grace, --email-retention,
// --dedicated-ip-cooldown, --database-max-idle-connections, --sftp-max-handles,
// --fd-reserve, --http-max-connections-per-address) accept it, and
// negative values are refused everywhere. The helpers below name the flag
// and its variable, as the other setting errors do (exit code 78); new
// limit flags should use them.

// checkRange refuses a count outside [lo, hi].
func checkRange(flag, env string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return settingError(flag, env, "%d is not between %d and %d", v, lo, hi)
	}
	return nil
}

// checkAtLeast refuses a count or size below lo.
func checkAtLeast(flag, env string, v, lo int64) error {
	if v < lo {
		return settingError(flag, env, "%d is below %d (to lift the limit, give a large value)", v, lo)
	}
	return nil
}

// checkPositive refuses a duration of zero or less.
func checkPositive(flag, env string, d time.Duration) error {
	if d <= 0 {
		return settingError(flag, env, "%s is not a duration above zero (to lift the limit, give a long one)", d)
	}
	return nil
}

// checkNotNegative refuses a negative duration; zeroMeans says what 0 does.
func checkNotNegative(flag, env string, d time.Duration, zeroMeans string) error {
	if d < 0 {
		return settingError(flag, env, "%s is negative (0 %s)", d, zeroMeans)
	}
	return nil
}

// checkCountNotNegative refuses a negative count; zeroMeans says what 0 does.
func checkCountNotNegative(flag, env string, v int64, zeroMeans string) error {
	if v < 0 {
		return settingError(flag, env, "%d is negative (0 %s)", v, zeroMeans)
	}
	return nil
}

// firstError is the first error that is not nil.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkLimits checks serve's limit flags that have no check of their own
// elsewhere (SFTPFlags.limits checks the handshake, auth tries and
// sessions; the storage, mail and dedicated IP flags theirs).
func (c *ServeCmd) checkLimits() error {
	h, s := c.HTTP, c.SFTP
	return firstError(
		checkAtLeast("--max-body-bytes", "SKIFF_MAX_BODY_BYTES", h.MaxBodyBytes, 1),
		checkAtLeast("--max-complexity", "SKIFF_MAX_COMPLEXITY", int64(h.MaxComplexity), 1),
		checkAtLeast("--max-depth", "SKIFF_MAX_DEPTH", int64(h.MaxDepth), 1),
		checkAtLeast("--max-tokens", "SKIFF_MAX_TOKENS", int64(h.MaxTokens), 1),
		checkAtLeast("--max-selections", "SKIFF_MAX_SELECTIONS", int64(h.MaxSelections), 1),
		checkAtLeast("--max-fields", "SKIFF_MAX_FIELDS", int64(h.MaxFields), 1),
		checkAtLeast("--max-response-bytes", "SKIFF_MAX_RESPONSE_BYTES", int64(h.MaxResponse), 1),
		checkPositive("--http-read-header-timeout", "SKIFF_HTTP_READ_HEADER_TIMEOUT", h.ReadHeader),
		checkPositive("--http-read-timeout", "SKIFF_HTTP_READ_TIMEOUT", h.Read),
		checkPositive("--http-write-timeout", "SKIFF_HTTP_WRITE_TIMEOUT", h.Write),
		checkPositive("--http-idle-timeout", "SKIFF_HTTP_IDLE_TIMEOUT", h.Idle),
		checkAtLeast("--http-max-connections", "SKIFF_HTTP_MAX_CONNECTIONS", int64(h.MaxConns), 1),
		checkCountNotNegative("--http-max-connections-per-address", "SKIFF_HTTP_MAX_CONNECTIONS_PER_ADDRESS", int64(h.MaxConnsPerIP), "lifts the cap"),
		checkAtLeast("--http-max-requests-per-address", "SKIFF_HTTP_MAX_REQUESTS_PER_ADDRESS", int64(h.MaxPerAddr), 1),
		checkPositive("--token-ttl", "SKIFF_TOKEN_TTL", h.TokenTTL),
		checkPositive("--access-token-ttl", "SKIFF_ACCESS_TOKEN_TTL", h.AccessTTL),
		checkPositive("--sftp-idle-timeout", "SKIFF_SFTP_IDLE_TIMEOUT", s.IdleTimeout),
		checkAtLeast("--sftp-max-connections", "SKIFF_SFTP_MAX_CONNECTIONS", int64(s.MaxConns), 1),
		checkAtLeast("--sftp-max-connections-per-address", "SKIFF_SFTP_MAX_CONNECTIONS_PER_ADDRESS", int64(s.MaxConnsPerIP), 1),
		checkRange("--trial-licences", "SKIFF_TRIAL_LICENCES", int64(s.TrialLicences), 1, 10000),
		checkNotNegative("--shutdown-grace", "SKIFF_SHUTDOWN_GRACE", c.ShutdownGrace, "cuts transfers at once"),
		checkNotNegative("--purge-grace", "SKIFF_PURGE_GRACE", c.Storage.PurgeGrace, "purges at the next pass"),
		checkNotNegative("--dedicated-ip-cooldown", "SKIFF_DEDICATED_IP_COOLDOWN", c.DedicatedIPs.Cooldown, "lets another account take a released address at once"),
		checkAtLeast("--max-subscriptions-per-token", "SKIFF_MAX_SUBSCRIPTIONS_PER_TOKEN", int64(h.MaxSubs), 1),
		checkNotNegative("--storage-reconcile-every", "SKIFF_STORAGE_RECONCILE_EVERY", c.Storage.ReconcileEvery, "recounts at start-up only"),
		checkNotNegative("--activity-retention", "SKIFF_ACTIVITY_RETENTION", c.Activity.Retention, "keeps events forever"),
		checkNotNegative("--upload-digest-interval", "SKIFF_UPLOAD_DIGEST_INTERVAL", c.Activity.DigestInterval, "is the default, 15m"),
	)
}
