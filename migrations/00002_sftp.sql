-- +goose Up
-- The SFTP module of each account. Status NONE/TRIAL/ACTIVE/SUSPENDED is stored;
-- EXPIRED is computed from trial_ends_at and the clock (no cron needed).
ALTER TABLE accounts
    ADD COLUMN sftp_status          text NOT NULL DEFAULT 'NONE'
        CHECK (sftp_status IN ('NONE', 'TRIAL', 'ACTIVE', 'SUSPENDED')),
    ADD COLUMN sftp_trial_started_at timestamptz,
    ADD COLUMN sftp_trial_ends_at    timestamptz,
    ADD COLUMN sftp_activated_at     timestamptz,
    ADD COLUMN sftp_requested_at     timestamptz,
    ADD COLUMN sftp_suspended_at     timestamptz,
    ADD COLUMN sftp_licences         integer NOT NULL DEFAULT 0 CHECK (sftp_licences >= 0);

-- Per-user SFTP access. Counting used licences = live users with sftp_enabled.
ALTER TABLE users
    ADD COLUMN sftp_enabled    boolean NOT NULL DEFAULT false,
    ADD COLUMN sftp_enabled_at timestamptz;
CREATE INDEX users_sftp_enabled ON users (account_id) WHERE sftp_enabled AND deleted_at IS NULL;

-- Lasting SFTP credentials: issued the first time SFTP is turned on, never deleted,
-- never reissued to anyone else (the login is unique across the deployment forever).
CREATE TABLE sftp_credentials (
    user_id       uuid PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts (id),
    login         text NOT NULL UNIQUE,
    custom_login  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id)
);
CREATE UNIQUE INDEX sftp_credentials_custom ON sftp_credentials (account_id, lower(custom_login))
    WHERE custom_login IS NOT NULL;
ALTER TABLE sftp_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE sftp_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sftp_credentials USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY cross_read ON sftp_credentials FOR SELECT USING (skiff_scope() IN ('directory', 'staff', 'outbox'));

-- Users' SSH public keys. public_key is the key in SSH wire format.
CREATE TABLE ssh_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts (id),
    user_id       uuid NOT NULL,
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    algorithm     text NOT NULL,
    bits          integer NOT NULL,
    fingerprint   text NOT NULL,
    comment       text NOT NULL DEFAULT '',
    public_key    bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL DEFAULT '',
    last_used_at  timestamptz,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id),
    UNIQUE (user_id, fingerprint)
);
CREATE INDEX ssh_keys_account_user ON ssh_keys (account_id, user_id, created_at);
ALTER TABLE ssh_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE ssh_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON ssh_keys USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY cross_read ON ssh_keys FOR SELECT USING (skiff_scope() = 'directory');
-- The directory records when a key was last used, and nothing else.
CREATE POLICY directory_touch ON ssh_keys FOR UPDATE USING (skiff_scope() = 'directory') WITH CHECK (skiff_scope() = 'directory');

-- SSH host keys: the deployment's (account_id NULL) and, later, per-account keys for
-- dedicated IPs. In the database so that every Skiff node presents the same identity.
CREATE TABLE host_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid REFERENCES accounts (id),
    algorithm    text NOT NULL,
    private_key  bytea NOT NULL,
    fingerprint  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX host_keys_scope_alg ON host_keys (coalesce(account_id, '00000000-0000-0000-0000-000000000000'::uuid), algorithm);
ALTER TABLE host_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE host_keys FORCE ROW LEVEL SECURITY;
-- Deployment keys (account_id NULL) are readable by anyone who needs them (fingerprints
-- are public); an account's keys by that account, the directory and staff.
CREATE POLICY read_public ON host_keys FOR SELECT USING (account_id IS NULL OR account_id = skiff_account()
    OR skiff_scope() IN ('directory', 'staff', 'outbox'));
CREATE POLICY write_deployment ON host_keys FOR INSERT WITH CHECK (account_id IS NULL AND skiff_scope() = 'directory');
CREATE POLICY write_staff ON host_keys USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');

-- Owners' and admins' requests to buy the module, queued for support.
CREATE TABLE sftp_module_requests (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts (id),
    requested_by  uuid NOT NULL,
    message       text NOT NULL DEFAULT '' CHECK (length(message) <= 2000),
    created_at    timestamptz NOT NULL DEFAULT now(),
    handled_at    timestamptz,
    FOREIGN KEY (account_id, requested_by) REFERENCES users (account_id, id)
);
CREATE INDEX sftp_module_requests_open ON sftp_module_requests (created_at) WHERE handled_at IS NULL;
ALTER TABLE sftp_module_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE sftp_module_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sftp_module_requests USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY staff ON sftp_module_requests USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');

GRANT SELECT, INSERT, UPDATE, DELETE ON sftp_credentials, ssh_keys, host_keys, sftp_module_requests TO skiff_app;

-- +goose Down
DROP TABLE sftp_module_requests, host_keys, ssh_keys, sftp_credentials;
ALTER TABLE users DROP COLUMN sftp_enabled, DROP COLUMN sftp_enabled_at;
ALTER TABLE accounts DROP COLUMN sftp_status, DROP COLUMN sftp_trial_started_at, DROP COLUMN sftp_trial_ends_at,
    DROP COLUMN sftp_activated_at, DROP COLUMN sftp_requested_at, DROP COLUMN sftp_suspended_at, DROP COLUMN sftp_licences;
