-- +goose Up
-- 00135 let the auth and directory scopes UPDATE users (policy login_touch)
-- so that a login's trigger could move the user's last_login_at forward; but
-- the policy let those scopes change any column of any user (their email,
-- role, SFTP access, password). The login triggers now run as the tables'
-- owner (SECURITY DEFINER) and set last_login_at alone, and the policy lets
-- only the owner of users update them in those scopes: the runtime role in
-- the auth and directory scopes updates no user at all. (Row-level security
-- is forced on the owner too, hence a policy; it names the owner through
-- the catalog rather than by name, so that handing the tables to another
-- role, with their functions, keeps logins recorded.)
DROP POLICY login_touch ON users;
CREATE POLICY login_touch ON users FOR UPDATE
    USING (skiff_scope() IN ('auth', 'directory')
           AND current_user = pg_get_userbyid((SELECT relowner FROM pg_class WHERE oid = 'users'::regclass)))
    WITH CHECK (skiff_scope() IN ('auth', 'directory')
           AND current_user = pg_get_userbyid((SELECT relowner FROM pg_class WHERE oid = 'users'::regclass)));
ALTER FUNCTION skiff_user_api_login() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION skiff_user_sftp_login() SECURITY DEFINER SET search_path = public, pg_temp;

-- +goose Down
ALTER FUNCTION skiff_user_sftp_login() SECURITY INVOKER RESET search_path;
ALTER FUNCTION skiff_user_api_login() SECURITY INVOKER RESET search_path;
DROP POLICY login_touch ON users;
CREATE POLICY login_touch ON users FOR UPDATE
    USING (skiff_scope() IN ('auth', 'directory')) WITH CHECK (skiff_scope() IN ('auth', 'directory'));
