-- +goose Up
-- Users sort by when they last logged in (issue #18, the LAST_LOGIN order of
-- Account.users and Group.members): the later of their newest API session's
-- start (tokens.created_at) and their last SFTP login
-- (sftp_credentials.last_login_at, 00095), kept on the user's row by the
-- triggers below so that a page is read from an index like the other orders.
-- Users who never logged in come last in both directions: the ascending
-- order reads them as 'infinity', the descending as '-infinity', each from
-- an index of its own (tenant.UserSorts).
ALTER TABLE users ADD COLUMN last_login_at timestamptz;

CREATE INDEX users_account_login_asc ON users (account_id, coalesce(last_login_at, 'infinity'::timestamptz), id);
CREATE INDEX users_account_login_desc ON users (account_id, coalesce(last_login_at, '-infinity'::timestamptz), id);
-- A group's members are its live users.
CREATE INDEX users_group_login_asc ON users (account_id, group_id, coalesce(last_login_at, 'infinity'::timestamptz), id)
    WHERE deleted_at IS NULL;
CREATE INDEX users_group_login_desc ON users (account_id, group_id, coalesce(last_login_at, '-infinity'::timestamptz), id)
    WHERE deleted_at IS NULL;

-- A login over the API (scope auth) and an SFTP login's record (scope
-- directory, after the login, off its path) move the user's time forward;
-- those scopes only read users otherwise.
CREATE POLICY login_touch ON users FOR UPDATE
    USING (skiff_scope() IN ('auth', 'directory')) WITH CHECK (skiff_scope() IN ('auth', 'directory'));

-- +goose StatementBegin
CREATE FUNCTION skiff_user_login(account uuid, usr uuid, at timestamptz) RETURNS void
LANGUAGE sql AS $$
    UPDATE users SET last_login_at = at
    WHERE account_id = account AND id = usr AND (last_login_at IS NULL OR last_login_at < at)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION skiff_user_api_login() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM skiff_user_login(NEW.account_id, NEW.user_id, NEW.created_at);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER user_api_login AFTER INSERT ON tokens
    FOR EACH ROW WHEN (NEW.user_id IS NOT NULL) EXECUTE FUNCTION skiff_user_api_login();

-- +goose StatementBegin
CREATE FUNCTION skiff_user_sftp_login() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM skiff_user_login(NEW.account_id, NEW.user_id, NEW.last_login_at);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER user_sftp_login AFTER UPDATE OF last_login_at ON sftp_credentials
    FOR EACH ROW WHEN (NEW.last_login_at IS NOT NULL AND NEW.last_login_at IS DISTINCT FROM OLD.last_login_at)
    EXECUTE FUNCTION skiff_user_sftp_login();

GRANT EXECUTE ON FUNCTION skiff_user_login(uuid, uuid, timestamptz) TO skiff_app;

-- Backfill, under forced RLS: the API logins where the auth scope reads
-- every session, then the SFTP logins where the directory reads every
-- user's credentials.
SELECT set_config('skiff.scope', 'auth', true);
UPDATE users u SET last_login_at = t.at
  FROM (SELECT account_id, user_id, max(created_at) AS at FROM tokens WHERE user_id IS NOT NULL GROUP BY account_id, user_id) t
 WHERE t.account_id = u.account_id AND t.user_id = u.id;
SELECT set_config('skiff.scope', 'directory', true);
UPDATE users u SET last_login_at = c.last_login_at
  FROM sftp_credentials c
 WHERE c.account_id = u.account_id AND c.user_id = u.id AND c.last_login_at IS NOT NULL
   AND (u.last_login_at IS NULL OR u.last_login_at < c.last_login_at);
SELECT set_config('skiff.scope', '', true);

-- +goose Down
DROP TRIGGER user_sftp_login ON sftp_credentials;
DROP TRIGGER user_api_login ON tokens;
DROP FUNCTION skiff_user_sftp_login(), skiff_user_api_login(), skiff_user_login(uuid, uuid, timestamptz);
DROP POLICY login_touch ON users;
DROP INDEX users_group_login_desc, users_group_login_asc, users_account_login_desc, users_account_login_asc;
ALTER TABLE users DROP COLUMN last_login_at;
