-- +goose Up
-- Files waiting to be deleted for good: a deleted user's home when their
-- deleter chose to delete their files, and a deleted project folder's files.
-- Each row is one tree of an account's storage; purge_after is the end of its
-- grace period (the deletion's time plus serve's --purge-grace, fixed when the
-- row is written). Until then restoring the user removes the row and nothing
-- is deleted. From then on serve's purge loop on any node claims the row with
-- SELECT ... FOR UPDATE SKIP LOCKED, deletes the tree and then the row in the
-- same transaction, so two nodes never work on one row, a restore waits for a
-- purge under way, and a purge cut short (a crash, a restart) is retried.
CREATE TABLE file_purges (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid NOT NULL REFERENCES accounts (id),
    kind         text NOT NULL CHECK (kind IN ('USER_HOME', 'PROJECT_FOLDER')),
    target_id    uuid NOT NULL,
    purge_after  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, kind, target_id)
);
CREATE INDEX file_purges_due ON file_purges (purge_after);
ALTER TABLE file_purges ENABLE ROW LEVEL SECURITY;
ALTER TABLE file_purges FORCE ROW LEVEL SECURITY;
-- The account schedules and cancels its own purges.
CREATE POLICY tenant ON file_purges USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
-- The purge loop runs on the staff path, across accounts (like the token clean-up).
CREATE POLICY staff ON file_purges USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
GRANT SELECT, INSERT, UPDATE, DELETE ON file_purges TO skiff_app;

-- +goose Down
DROP TABLE file_purges;
