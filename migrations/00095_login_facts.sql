-- +goose Up
-- Facts admin screens need (issue #18 item 7): when a user last logged in, over
-- the API and over SFTP, and the API sessions a user can list and revoke.

-- The last SFTP login of a user, password or key. Written at most once a
-- minute per user (a login within the minute writes nothing), by the
-- directory after the login succeeded; key logins write it in the statement
-- that already records the key's last use. Backfilled from the keys.
ALTER TABLE sftp_credentials ADD COLUMN last_login_at timestamptz;
UPDATE sftp_credentials c SET last_login_at = k.used
  FROM (SELECT user_id, max(last_used_at) AS used FROM ssh_keys GROUP BY user_id) k
 WHERE k.user_id = c.user_id AND k.used IS NOT NULL;
-- The directory records when a login last succeeded, and nothing else.
CREATE POLICY directory_touch ON sftp_credentials FOR UPDATE
    USING (skiff_scope() = 'directory') WITH CHECK (skiff_scope() = 'directory');

-- A row of tokens is an API session: one login. A BEARER session is the
-- long-lived bearer token of `login` (hash = its hash, as before). A REFRESH
-- session (login with tokenKind ACCESS_AND_REFRESH) has no bearer hash: its
-- short-lived access tokens are in access_tokens and its rotating refresh
-- tokens in refresh_tokens; expires_at is when its current refresh token
-- expires. Revoking the row ends every token of the session.
ALTER TABLE tokens
    ALTER COLUMN hash DROP NOT NULL,
    ADD COLUMN kind text NOT NULL DEFAULT 'BEARER' CHECK (kind IN ('BEARER', 'REFRESH')),
    ADD COLUMN user_agent text NOT NULL DEFAULT '',
    ADD COLUMN ip text NOT NULL DEFAULT '',
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN last_ip text NOT NULL DEFAULT '',
    ADD COLUMN revoked_reason text NOT NULL DEFAULT '',
    ADD CONSTRAINT tokens_kind_hash CHECK ((kind = 'BEARER') = (hash IS NOT NULL));
-- User.lastApiLoginAt: the newest session of each user, in a page of users.
CREATE INDEX tokens_user_created ON tokens (account_id, user_id, created_at DESC);
CREATE INDEX tokens_staff ON tokens (staff_id, created_at DESC) WHERE staff_id IS NOT NULL;
-- Staff list and revoke their own sessions in the staff scope, where their
-- audit trail (staff_audit_events) is written in the same transaction.
CREATE POLICY staff_own ON tokens USING (skiff_scope() = 'staff' AND staff_id IS NOT NULL)
    WITH CHECK (skiff_scope() = 'staff' AND staff_id IS NOT NULL);

-- Short-lived access tokens of REFRESH sessions, stored as SHA-256.
CREATE TABLE access_tokens (
    hash        bytea PRIMARY KEY,
    token_id    uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    account_id  uuid REFERENCES accounts (id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX access_tokens_token ON access_tokens (token_id);
ALTER TABLE access_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON access_tokens USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY auth ON access_tokens USING (skiff_scope() = 'auth') WITH CHECK (skiff_scope() = 'auth');

-- Every refresh token a REFRESH session was given, stored as SHA-256. The
-- current one has used_at NULL; a used one presented again is a replay, and
-- revokes the whole session (refresh-token rotation with reuse detection).
CREATE TABLE refresh_tokens (
    hash        bytea PRIMARY KEY,
    token_id    uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    account_id  uuid REFERENCES accounts (id),
    created_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_token ON refresh_tokens (token_id);
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON refresh_tokens USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY auth ON refresh_tokens USING (skiff_scope() = 'auth') WITH CHECK (skiff_scope() = 'auth');

GRANT SELECT, INSERT, UPDATE, DELETE ON access_tokens, refresh_tokens TO skiff_app;

-- +goose Down
DROP TABLE refresh_tokens, access_tokens;
DELETE FROM tokens WHERE kind <> 'BEARER';
DROP POLICY staff_own ON tokens;
DROP INDEX tokens_staff;
DROP INDEX tokens_user_created;
ALTER TABLE tokens DROP CONSTRAINT tokens_kind_hash, DROP COLUMN kind, DROP COLUMN user_agent, DROP COLUMN ip,
    DROP COLUMN last_used_at, DROP COLUMN last_ip, DROP COLUMN revoked_reason,
    ALTER COLUMN hash SET NOT NULL;
DROP POLICY directory_touch ON sftp_credentials;
ALTER TABLE sftp_credentials DROP COLUMN last_login_at;
