-- +goose Up
-- The runtime role. The service switches to it at the start of every transaction
-- (set_config('role', ...)), so row-level security applies even when the service
-- connects as the owner of the tables. It owns nothing and cannot bypass RLS.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'skiff_app') THEN
        CREATE ROLE skiff_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    -- The migrating role (the tables' owner) must be able to switch to skiff_app;
    -- so must the service's login role if it is another one (see docs/OPERATIONS.md).
    IF NOT pg_has_role(current_user, 'skiff_app', 'MEMBER') THEN
        EXECUTE format('GRANT skiff_app TO %I', current_user);
    END IF;
END
$$;
-- +goose StatementEnd

-- skiff_account() is the account the current transaction is scoped to, or NULL.
-- skiff_scope() names a cross-tenant path ('staff', 'directory', 'auth', 'outbox'),
-- set only by the store's explicit cross-tenant helpers.
-- +goose StatementBegin
CREATE FUNCTION skiff_account() RETURNS uuid
LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('skiff.account_id', true), '')::uuid $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION skiff_scope() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('skiff.scope', true), '') $$;
-- +goose StatementEnd

CREATE TABLE accounts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- The account row is the tenant itself: its "account_id" is its id.
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON accounts USING (id = skiff_account()) WITH CHECK (id = skiff_account());
CREATE POLICY staff ON accounts USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
CREATE POLICY cross_read ON accounts FOR SELECT USING (skiff_scope() IN ('directory', 'auth', 'outbox'));

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id     uuid NOT NULL REFERENCES accounts (id),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role           text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'USER')),
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    UNIQUE (account_id, id)
);
-- One live user per email across the deployment: login(email, password) must find one user.
CREATE UNIQUE INDEX users_email_live ON users (lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX users_account ON users (account_id, lower(name), id);
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON users USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY staff ON users USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
CREATE POLICY cross_read ON users FOR SELECT USING (skiff_scope() IN ('directory', 'auth', 'outbox'));

CREATE TABLE contacts (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id         uuid NOT NULL REFERENCES accounts (id),
    email              text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    company            text NOT NULL DEFAULT '',
    phone              text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- A converted contact keeps its row (history) but no longer shows as a contact.
    converted_user_id  uuid,
    deleted_at         timestamptz,
    FOREIGN KEY (account_id, converted_user_id) REFERENCES users (account_id, id)
);
CREATE UNIQUE INDEX contacts_email_live ON contacts (account_id, lower(email))
    WHERE deleted_at IS NULL AND converted_user_id IS NULL;
CREATE INDEX contacts_account ON contacts (account_id, lower(name), id);
ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON contacts USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());

-- Support staff: not tenant data, a separate kind of principal.
CREATE TABLE staff (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name           text NOT NULL,
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX staff_email ON staff (lower(email));

-- Bearer tokens, stored as SHA-256 of the random secret. A token belongs to a user
-- (with their account) or to a staff member.
CREATE TABLE tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    hash          bytea NOT NULL UNIQUE,
    account_id    uuid REFERENCES accounts (id),
    user_id       uuid,
    staff_id      uuid REFERENCES staff (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id),
    CHECK ((user_id IS NOT NULL AND account_id IS NOT NULL AND staff_id IS NULL)
        OR (user_id IS NULL AND account_id IS NULL AND staff_id IS NOT NULL))
);
CREATE INDEX tokens_user ON tokens (user_id) WHERE revoked_at IS NULL;
ALTER TABLE tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON tokens USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY auth ON tokens USING (skiff_scope() = 'auth') WITH CHECK (skiff_scope() = 'auth');

-- Failed logins, counted per key ("email:...", "addr:...") to slow down guessing.
CREATE TABLE auth_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    last_failed  timestamptz NOT NULL
);

-- Audit trail of administrative changes.
CREATE TABLE audit_events (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid NOT NULL REFERENCES accounts (id),
    -- clock_timestamp(), not now(): events of one transaction keep their order.
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_kind   text NOT NULL CHECK (actor_kind IN ('USER', 'STAFF', 'SYSTEM')),
    actor_id     uuid,
    actor_name   text NOT NULL DEFAULT '',
    kind         text NOT NULL,
    target_kind  text NOT NULL DEFAULT '',
    target_id    uuid,
    before       jsonb,
    after        jsonb
);
CREATE INDEX audit_events_account ON audit_events (account_id, at DESC, id DESC);
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON audit_events USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY staff ON audit_events USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');

GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, users, contacts, staff, tokens, auth_failures, audit_events TO skiff_app;
GRANT EXECUTE ON FUNCTION skiff_account(), skiff_scope() TO skiff_app;

-- +goose Down
DROP TABLE audit_events, auth_failures, tokens, staff, contacts, users, accounts;
DROP FUNCTION skiff_scope(), skiff_account();
