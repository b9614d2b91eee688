-- +goose Up
-- Storage quotas (issue #13). An account's quota is set by support staff, a
-- user's own by the account's owners and administrators; NULL is no quota.
-- storage_alert is the last usage level the owners were emailed about (0, 80
-- or 100 per cent of the account's quota), so each crossing emails once; it
-- goes back to 0 when usage falls below 80 per cent.
ALTER TABLE accounts ADD COLUMN storage_quota bigint CHECK (storage_quota >= 0);
ALTER TABLE accounts ADD COLUMN storage_alert smallint NOT NULL DEFAULT 0 CHECK (storage_alert IN (0, 80, 100));
ALTER TABLE users ADD COLUMN storage_quota bigint CHECK (storage_quota >= 0);

-- Bytes stored per tree of an account's storage: a user's home (tree_id is
-- the user's ID) or a project folder (the folder's ID). user_id is whose
-- quota the tree counts against: the home's user, the folder's creator.
-- Kept incrementally by the SFTP sessions of every node; the reconcile pass
-- sets used_bytes from a walk of the tree. version grows with every change,
-- so the reconcile pass can tell a tree that changed during its walk.
CREATE TABLE storage_usage (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    tree_id     uuid NOT NULL,
    user_id     uuid NOT NULL,
    used_bytes  bigint NOT NULL DEFAULT 0,
    version     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, tree_id)
);

-- Bytes set aside by an SFTP session for writes in progress to one tree,
-- counted against the quotas until the session settles them (at the file's
-- close) or the row expires (a node that died): writes are checked against
-- quota - used - reserved without a database round trip per write.
CREATE TABLE storage_reservations (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id  uuid NOT NULL,
    tree_id     uuid NOT NULL,
    user_id     uuid NOT NULL,
    bytes       bigint NOT NULL CHECK (bytes >= 0),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, session_id, tree_id)
);
CREATE INDEX storage_reservations_expiry ON storage_reservations (expires_at);

ALTER TABLE storage_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON storage_usage USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY staff ON storage_usage FOR SELECT USING (skiff_scope() = 'staff');
ALTER TABLE storage_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage_reservations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON storage_reservations USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
GRANT SELECT, INSERT, UPDATE, DELETE ON storage_usage, storage_reservations TO skiff_app;

-- +goose Down
DROP TABLE storage_reservations;
DROP TABLE storage_usage;
ALTER TABLE users DROP COLUMN storage_quota;
ALTER TABLE accounts DROP COLUMN storage_alert;
ALTER TABLE accounts DROP COLUMN storage_quota;
