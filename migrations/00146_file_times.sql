-- +goose Up
-- Modification times clients set on files and folders kept on S3-backed
-- storage (storage/s3/times.go): an object's own time is when it was
-- written and cannot be changed without rewriting it. tree_id is the tree's
-- (a user's ID for a home, a folder's ID for a project folder); dir and name
-- split the tree-relative path (dir '' at the top), so that a listing reads
-- one folder's rows. version is the object's ETag when its time was set:
-- the time applies while the object is that version; '' for a folder. On local-disk
-- storage the file system keeps times and this table stays empty.
CREATE TABLE file_times (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    tree_id     uuid NOT NULL,
    dir         text COLLATE "C" NOT NULL,
    name        text COLLATE "C" NOT NULL,
    version     text NOT NULL,
    mtime       timestamptz NOT NULL,
    PRIMARY KEY (account_id, tree_id, dir, name)
);

ALTER TABLE file_times ENABLE ROW LEVEL SECURITY;
ALTER TABLE file_times FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON file_times USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
GRANT SELECT, INSERT, UPDATE, DELETE ON file_times TO skiff_app;

-- +goose Down
DROP TABLE file_times;
