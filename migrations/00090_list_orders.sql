-- +goose Up
-- Lists sort in the orders admin screens offer and page by keyset in both
-- directions (issue #18): each order of each list reads an index on
-- (tenant, filters, sort key, id) from a cursor onwards, so a page costs the
-- same at row 20 and at row 20,000. Indexes that existed already: users
-- (account_id, lower(name), id), contacts by name, groups by sort_key,
-- live folders by name, audit_events (account_id, at, id), outbox
-- (account_id, created_at, id), dedicated_ip_requests (created_at, id).

-- The backfill below must see every account; under forced RLS that is the
-- staff path, like support tooling.
SELECT set_config('skiff.scope', 'staff', true);

CREATE INDEX users_account_email ON users (account_id, lower(email), id);
CREATE INDEX users_account_created ON users (account_id, created_at, id);
-- A group's members are its live users.
CREATE INDEX users_group_name ON users (account_id, group_id, lower(name), id) WHERE deleted_at IS NULL;
CREATE INDEX users_group_email ON users (account_id, group_id, lower(email), id) WHERE deleted_at IS NULL;
CREATE INDEX users_group_created ON users (account_id, group_id, created_at, id) WHERE deleted_at IS NULL;

CREATE INDEX contacts_live_email ON contacts (account_id, lower(email), id)
    WHERE deleted_at IS NULL AND converted_user_id IS NULL;
CREATE INDEX contacts_live_company ON contacts (account_id, lower(company), id)
    WHERE deleted_at IS NULL AND converted_user_id IS NULL;
CREATE INDEX contacts_live_created ON contacts (account_id, created_at, id)
    WHERE deleted_at IS NULL AND converted_user_id IS NULL;

CREATE INDEX groups_account_name ON groups (account_id, lower(name), id);
CREATE INDEX groups_account_created ON groups (account_id, created_at, id);

CREATE INDEX project_folders_account_created ON project_folders (account_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX project_folders_account_updated ON project_folders (account_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE INDEX accounts_name ON accounts (lower(name), id);
CREATE INDEX accounts_created ON accounts (created_at, id);

CREATE INDEX sftp_module_requests_queue ON sftp_module_requests (created_at, id);

-- An account's last activity: the time of its latest audited change (or its
-- creation), for the staff list of accounts "newest activity first". It is
-- a row of its own rather than a column of accounts so that keeping it never
-- waits on the account row, which licence changes lock (FOR UPDATE): the
-- deferred trigger takes this row's lock only at commit, when the
-- transaction waits for nothing else.
CREATE TABLE account_activity (
    account_id        uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    last_activity_at  timestamptz NOT NULL
);
CREATE INDEX account_activity_at ON account_activity (last_activity_at, account_id);
ALTER TABLE account_activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_activity FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON account_activity USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY staff ON account_activity USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
GRANT SELECT, INSERT, UPDATE ON account_activity TO skiff_app;

INSERT INTO account_activity (account_id, last_activity_at)
SELECT a.id, greatest(a.created_at, (SELECT max(e.at) FROM audit_events e WHERE e.account_id = a.id))
FROM accounts a;

-- +goose StatementBegin
CREATE FUNCTION skiff_account_activity_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_activity (account_id, last_activity_at) VALUES (NEW.id, NEW.created_at);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER account_activity_start AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION skiff_account_activity_start();

-- +goose StatementBegin
CREATE FUNCTION skiff_account_activity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_activity SET last_activity_at = NEW.at
    WHERE account_id = NEW.account_id AND last_activity_at < NEW.at;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE CONSTRAINT TRIGGER account_activity AFTER INSERT ON audit_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION skiff_account_activity();

-- +goose Down
DROP TRIGGER account_activity ON audit_events;
DROP FUNCTION skiff_account_activity();
DROP TRIGGER account_activity_start ON accounts;
DROP FUNCTION skiff_account_activity_start();
DROP TABLE account_activity;
DROP INDEX sftp_module_requests_queue, accounts_created, accounts_name,
    project_folders_account_updated, project_folders_account_created,
    groups_account_created, groups_account_name,
    contacts_live_created, contacts_live_company, contacts_live_email,
    users_group_created, users_group_email, users_group_name,
    users_account_created, users_account_email;
