-- +goose Up
-- The identity of the file storage (--storage-dir), issue #19. The first
-- `serve` to start against this database writes a marker file holding this ID
-- into the storage directory and records the ID here; every later start
-- refuses to run when the directory lacks the marker or holds another one
-- (a shared mount that failed, or another deployment's storage), and
-- /readyz fails when the marker disappears. One row at most.
CREATE TABLE storage_marker (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id          text NOT NULL CHECK (id ~ '^[0-9a-f]{32}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE storage_marker ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage_marker FORCE ROW LEVEL SECURITY;
CREATE POLICY staff ON storage_marker USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
GRANT SELECT, INSERT ON storage_marker TO skiff_app;

-- +goose Down
DROP TABLE storage_marker;
