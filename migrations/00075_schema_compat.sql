-- +goose Up
-- What a running binary checks before it serves (docs/OPERATIONS.md,
-- "Upgrades"): the newest migration applied, which the runtime role may now
-- read, and the oldest binary this schema still works with.
--
-- compatible_from is the newest migration a binary must know to run on this
-- schema. Expand migrations (new tables, new nullable or defaulted columns)
-- leave it alone, so the previous release keeps serving during a rolling
-- upgrade. A contract migration (dropping or renaming what an older release
-- uses) raises it to the newest migration of the release whose code no
-- longer uses what it removes; binaries that know less refuse to start.
CREATE TABLE skiff_schema (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    compatible_from  bigint NOT NULL
);
INSERT INTO skiff_schema (compatible_from) VALUES (0);
GRANT SELECT ON skiff_schema TO skiff_app;
GRANT SELECT ON goose_db_version TO skiff_app;

-- +goose Down
REVOKE SELECT ON goose_db_version FROM skiff_app;
DROP TABLE skiff_schema;
