-- +goose Up
-- IP allowlists (issue #14): an account's list of CIDRs, set by its owners,
-- and an optional list per user, set by owners and administrators. A login
-- (API or SFTP) and every authenticated API request of the account's users
-- must come from an address in the account's list, when it has one, and in
-- the user's, when they have one; an empty list restricts nothing. They are
-- columns of accounts and users, so the row-level security of those tables
-- applies. Stored normalised by Go (net/netip, masked, at most 100).
ALTER TABLE accounts ADD COLUMN ip_allowlist text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(ip_allowlist) <= 100);
ALTER TABLE users ADD COLUMN ip_allowlist text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(ip_allowlist) <= 100);

-- skiff_sftp_allowlists gives the SFTP login lookup the account's and the
-- user's lists. It is called in the same statement as skiff_sftp_login
-- (see tenant/sftplogin loginQuery: a LATERAL join on its row), so a login
-- stays one round trip, and it is separate so that skiff_sftp_login can
-- change without this migration replacing it. It scopes itself the same
-- way: the runtime role skiff_app under row-level security, the directory
-- scope, the caller's settings put back.
-- +goose StatementBegin
CREATE FUNCTION skiff_sftp_allowlists(p_account uuid, p_user uuid)
RETURNS TABLE (account_allowlist text[], user_allowlist text[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    caller_role    text := current_setting('role');
    caller_account text := coalesce(current_setting('skiff.account_id', true), '');
    caller_scope   text := coalesce(current_setting('skiff.scope', true), '');
BEGIN
    PERFORM set_config('role', 'skiff_app', true), set_config('skiff.account_id', '', true),
            set_config('skiff.scope', 'directory', true);
    RETURN QUERY
    SELECT a.ip_allowlist, u.ip_allowlist
    FROM users u JOIN accounts a ON a.id = u.account_id
    WHERE u.account_id = p_account AND u.id = p_user;
    PERFORM set_config('role', caller_role, true), set_config('skiff.account_id', caller_account, true),
            set_config('skiff.scope', caller_scope, true);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION skiff_sftp_allowlists(uuid, uuid);
ALTER TABLE users DROP COLUMN ip_allowlist;
ALTER TABLE accounts DROP COLUMN ip_allowlist;
