-- +goose Up
-- SSH keys get an expiry date and a status (issue #14 point 7). A key that is
-- DISABLED, or whose expires_at has passed, is refused at login exactly like
-- a key the user does not have, and the sessions that logged in with it end
-- (tenant.Directory.LoginAllowed). expiry_warned_at and expired_notified_at
-- record the two emails to the key's owner (7 days before, and on expiry),
-- so each goes once; changing expires_at clears them.
ALTER TABLE ssh_keys
    ADD COLUMN expires_at          timestamptz,
    ADD COLUMN status              text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
    ADD COLUMN expiry_warned_at    timestamptz,
    ADD COLUMN expired_notified_at timestamptz;
-- The reminder job's scan (tenant/sftpaccess SendSSHKeyExpiryReminders).
CREATE INDEX ssh_keys_expiry ON ssh_keys (expires_at) WHERE expires_at IS NOT NULL AND expired_notified_at IS NULL;

-- skiff_sftp_login as in migration 00008 (which explains it), now also
-- returning the key's status and expiry: the caller refuses a disabled or
-- expired key like an unknown one, by its own clock (tests inject one).
DROP FUNCTION skiff_sftp_login(text, uuid, text);
-- +goose StatementBegin
CREATE FUNCTION skiff_sftp_login(p_login text, p_account uuid, p_fingerprint text)
RETURNS TABLE (account_id uuid, user_id uuid, login text, password_hash text, live boolean,
               sftp_enabled boolean, sftp_status text, sftp_trial_ends_at timestamptz, jailed boolean,
               key_id uuid, key_blob bytea, key_last_used_at timestamptz,
               key_status text, key_expires_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    caller_role    text := current_setting('role');
    caller_account text := coalesce(current_setting('skiff.account_id', true), '');
    caller_scope   text := coalesce(current_setting('skiff.scope', true), '');
BEGIN
    PERFORM set_config('role', 'skiff_app', true), set_config('skiff.account_id', '', true),
            set_config('skiff.scope', 'directory', true);
    RETURN QUERY
    WITH cred AS (
        SELECT c.account_id, c.user_id, c.login FROM sftp_credentials c
        WHERE c.login = p_login AND (p_account IS NULL OR c.account_id = p_account)
        UNION ALL
        SELECT c.account_id, c.user_id, c.login FROM sftp_credentials c
        WHERE p_account IS NOT NULL AND c.account_id = p_account AND lower(c.custom_login) = p_login
    )
    SELECT c.account_id, c.user_id, c.login,
           coalesce(u.password_hash, ''),
           u.deleted_at IS NULL, u.sftp_enabled,
           a.sftp_status, a.sftp_trial_ends_at,
           NOT EXISTS (SELECT 1 FROM groups g WHERE g.account_id = u.account_id AND g.id = u.group_id
               AND g.builtin IS DISTINCT FROM 'JAILED' AND 'SFTP_MY_FILES' = ANY (g.permissions)),
           k.id, k.public_key, k.last_used_at, k.status, k.expires_at
    FROM cred c
    JOIN users u ON u.account_id = c.account_id AND u.id = c.user_id
    JOIN accounts a ON a.id = c.account_id
    LEFT JOIN ssh_keys k ON k.account_id = c.account_id AND k.user_id = c.user_id AND k.fingerprint = p_fingerprint;
    PERFORM set_config('role', caller_role, true), set_config('skiff.account_id', caller_account, true),
            set_config('skiff.scope', caller_scope, true);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION skiff_sftp_login(text, uuid, text);
-- +goose StatementBegin
CREATE FUNCTION skiff_sftp_login(p_login text, p_account uuid, p_fingerprint text)
RETURNS TABLE (account_id uuid, user_id uuid, login text, password_hash text, live boolean,
               sftp_enabled boolean, sftp_status text, sftp_trial_ends_at timestamptz, jailed boolean,
               key_id uuid, key_blob bytea, key_last_used_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    caller_role    text := current_setting('role');
    caller_account text := coalesce(current_setting('skiff.account_id', true), '');
    caller_scope   text := coalesce(current_setting('skiff.scope', true), '');
BEGIN
    PERFORM set_config('role', 'skiff_app', true), set_config('skiff.account_id', '', true),
            set_config('skiff.scope', 'directory', true);
    RETURN QUERY
    WITH cred AS (
        SELECT c.account_id, c.user_id, c.login FROM sftp_credentials c
        WHERE c.login = p_login AND (p_account IS NULL OR c.account_id = p_account)
        UNION ALL
        SELECT c.account_id, c.user_id, c.login FROM sftp_credentials c
        WHERE p_account IS NOT NULL AND c.account_id = p_account AND lower(c.custom_login) = p_login
    )
    SELECT c.account_id, c.user_id, c.login,
           coalesce(u.password_hash, ''),
           u.deleted_at IS NULL, u.sftp_enabled,
           a.sftp_status, a.sftp_trial_ends_at,
           NOT EXISTS (SELECT 1 FROM groups g WHERE g.account_id = u.account_id AND g.id = u.group_id
               AND g.builtin IS DISTINCT FROM 'JAILED' AND 'SFTP_MY_FILES' = ANY (g.permissions)),
           k.id, k.public_key, k.last_used_at
    FROM cred c
    JOIN users u ON u.account_id = c.account_id AND u.id = c.user_id
    JOIN accounts a ON a.id = c.account_id
    LEFT JOIN ssh_keys k ON k.account_id = c.account_id AND k.user_id = c.user_id AND k.fingerprint = p_fingerprint;
    PERFORM set_config('role', caller_role, true), set_config('skiff.account_id', caller_account, true),
            set_config('skiff.scope', caller_scope, true);
END
$$;
-- +goose StatementEnd
ALTER TABLE ssh_keys DROP COLUMN expires_at, DROP COLUMN status, DROP COLUMN expiry_warned_at, DROP COLUMN expired_notified_at;
