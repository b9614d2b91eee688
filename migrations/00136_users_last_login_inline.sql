-- +goose Up
-- The login triggers of 00135 called a SQL function, which PostgreSQL plans
-- again at every call: planning an UPDATE of users (its indexes, its
-- row-level security) cost each API login about 2 ms. PL/pgSQL keeps the
-- plan of a statement it runs, so the triggers now run the UPDATE
-- themselves.

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION skiff_user_api_login() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET last_login_at = NEW.created_at
    WHERE account_id = NEW.account_id AND id = NEW.user_id
      AND (last_login_at IS NULL OR last_login_at < NEW.created_at);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION skiff_user_sftp_login() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET last_login_at = NEW.last_login_at
    WHERE account_id = NEW.account_id AND id = NEW.user_id
      AND (last_login_at IS NULL OR last_login_at < NEW.last_login_at);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

DROP FUNCTION skiff_user_login(uuid, uuid, timestamptz);

-- +goose Down
-- +goose StatementBegin
CREATE FUNCTION skiff_user_login(account uuid, usr uuid, at timestamptz) RETURNS void
LANGUAGE sql AS $$
    UPDATE users SET last_login_at = at
    WHERE account_id = account AND id = usr AND (last_login_at IS NULL OR last_login_at < at)
$$;
-- +goose StatementEnd
GRANT EXECUTE ON FUNCTION skiff_user_login(uuid, uuid, timestamptz) TO skiff_app;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION skiff_user_api_login() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM skiff_user_login(NEW.account_id, NEW.user_id, NEW.created_at);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION skiff_user_sftp_login() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM skiff_user_login(NEW.account_id, NEW.user_id, NEW.last_login_at);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
