-- +goose Up
-- skiff_sftp_login is the SFTP login lookup of tenant.Directory in one round
-- trip: a login costs one statement instead of a transaction of four (BEGIN,
-- the scoping set_config, the lookup, COMMIT), which lib/pq sends as five
-- round trips. It is the same narrow path as the Go store's "directory"
-- scope: it becomes skiff_app (so row-level security applies, as the runtime
-- role has no BYPASSRLS and the tables force it) with the scope set to
-- 'directory' and no account, reads, and puts the caller's settings back.
-- The settings are local to the transaction, so an error cannot leave them
-- behind either.
--
-- It resolves a login (p_login, lowercase) that reached an address routed to
-- the account p_account (NULL for a shared address) to the user, their
-- account's module state and, for a public-key login, the user's key with
-- fingerprint p_fingerprint (empty matches no key):
--   - on an account's dedicated IP (p_account set), only that account's
--     credentials match, by login ID or custom login; another account's login
--     ID finds nothing, exactly like an unknown login;
--   - on any other address only login IDs match, in any account.
-- Login IDs are issued lowercase and custom logins stored lowercase. A custom
-- login never has the shape of a login ID, so the two branches never both
-- match, and each matches at most one user. "jailed" is the rule of package
-- policy (the user's group does not grant My Files), as in
-- tenant.Directory.SessionAllowed.
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

-- +goose Down
DROP FUNCTION skiff_sftp_login(text, uuid, text);
