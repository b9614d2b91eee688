-- +goose Up
-- Groups, project folders and their shares. Package policy reads these rows (and
-- users' role, group and deletion) and turns them into one Casbin policy per
-- account; see policy/ and docs/PERMISSIONS.md. They are ordinary tenant tables
-- rather than a generic casbin_rule table so that foreign keys, checks and RLS
-- guard them, and a change commits together with its audit record.

-- The migration backfills existing accounts and users; under forced RLS it may
-- only do so on the staff path, like support tooling.
SELECT set_config('skiff.scope', 'staff', true);

CREATE TABLE groups (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- PRO, ASSOCIATE or JAILED for the three built-in groups; NULL for custom groups.
    builtin      text CHECK (builtin IN ('PRO', 'ASSOCIATE', 'JAILED')),
    -- The permission vocabulary of policy.Permission.
    permissions  text[] NOT NULL DEFAULT '{}' CHECK (permissions <@
        ARRAY['SFTP_MY_FILES', 'CREATE_PROJECT_FOLDERS', 'SHARE_PROJECT_FOLDERS', 'MANAGE_CONTACTS']::text[]),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Lists show the built-in groups first, in this order, then custom groups by name.
    sort_key     text NOT NULL GENERATED ALWAYS AS (CASE builtin
        WHEN 'PRO' THEN '0' WHEN 'ASSOCIATE' THEN '1' WHEN 'JAILED' THEN '2'
        ELSE '3' || lower(name) END) STORED,
    UNIQUE (account_id, id),
    -- Jailed Users always keeps its jail, whatever a client sends.
    CONSTRAINT jailed_users_keep_the_jail
        CHECK (builtin IS DISTINCT FROM 'JAILED' OR NOT 'SFTP_MY_FILES' = ANY (permissions))
);
CREATE UNIQUE INDEX groups_builtin ON groups (account_id, builtin) WHERE builtin IS NOT NULL;
CREATE UNIQUE INDEX groups_name ON groups (account_id, lower(name));
CREATE INDEX groups_account_sort ON groups (account_id, sort_key, id);
ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE groups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON groups USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
-- Staff create accounts, and with them their built-in groups (see the trigger below).
CREATE POLICY staff ON groups USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
-- An SFTP login learns from the user's group whether they are jailed.
CREATE POLICY cross_read ON groups FOR SELECT USING (skiff_scope() = 'directory');

-- The built-in groups and their starting permissions. Pro can do everything
-- but manage contacts, which stays with owners and administrators until an
-- admin grants it to a group;
-- Associates work in My Files and create project folders but do not share them;
-- Jailed Users see only what is shared with them.
-- +goose StatementBegin
CREATE FUNCTION skiff_add_builtin_groups(account uuid) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO groups (account_id, name, builtin, permissions) VALUES
        (account, 'Pro', 'PRO', ARRAY['SFTP_MY_FILES', 'CREATE_PROJECT_FOLDERS', 'SHARE_PROJECT_FOLDERS']),
        (account, 'Associate', 'ASSOCIATE', ARRAY['SFTP_MY_FILES', 'CREATE_PROJECT_FOLDERS']),
        (account, 'Jailed Users', 'JAILED', '{}')
$$;
-- +goose StatementEnd
SELECT skiff_add_builtin_groups(id) FROM accounts;

-- Every new account gets its built-in groups in the transaction that creates it,
-- so no code path can make an account without them.
-- +goose StatementBegin
CREATE FUNCTION skiff_account_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM skiff_add_builtin_groups(NEW.id);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER builtin_groups AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION skiff_account_created();

-- Every user is in exactly one group. Existing users, and new users for whom no
-- group is given, join Pro: nobody loses My Files when groups arrive.
ALTER TABLE users ADD COLUMN group_id uuid;
UPDATE users u SET group_id = g.id FROM groups g WHERE g.account_id = u.account_id AND g.builtin = 'PRO';
ALTER TABLE users ALTER COLUMN group_id SET NOT NULL,
    ADD CONSTRAINT users_group FOREIGN KEY (account_id, group_id) REFERENCES groups (account_id, id);
CREATE INDEX users_group ON users (account_id, group_id);
-- +goose StatementBegin
CREATE FUNCTION skiff_user_default_group() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.group_id IS NULL THEN
        SELECT id INTO NEW.group_id FROM groups WHERE account_id = NEW.account_id AND builtin = 'PRO';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER default_group BEFORE INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION skiff_user_default_group();

-- Project folders. The files live in storage under the folder's ID; a deleted
-- folder keeps its row (audit, and the ID is never reused) and loses its shares.
CREATE TABLE project_folders (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id),
    -- One SFTP path element: at most 255 bytes (NAME_MAX); the service checks the rest.
    name        text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
    created_by  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, created_by) REFERENCES users (account_id, id)
);
CREATE INDEX project_folders_account ON project_folders (account_id, lower(name), id) WHERE deleted_at IS NULL;
ALTER TABLE project_folders ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_folders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON project_folders USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());

-- Who a project folder is shared with (one user or one group) and with which preset.
CREATE TABLE folder_shares (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id),
    folder_id   uuid NOT NULL,
    user_id     uuid,
    group_id    uuid,
    preset      text NOT NULL CHECK (preset IN ('LIST', 'READ', 'WRITE', 'SHARE', 'OWNER')),
    shared_by   uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (account_id, folder_id) REFERENCES project_folders (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id),
    -- Deleting a group ends the shares made with it.
    FOREIGN KEY (account_id, group_id) REFERENCES groups (account_id, id) ON DELETE CASCADE,
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX folder_shares_user ON folder_shares (folder_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX folder_shares_group ON folder_shares (folder_id, group_id) WHERE group_id IS NOT NULL;
CREATE INDEX folder_shares_account ON folder_shares (account_id, folder_id);
ALTER TABLE folder_shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE folder_shares FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON folder_shares USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());

GRANT SELECT, INSERT, UPDATE, DELETE ON groups, project_folders, folder_shares TO skiff_app;

-- Every change the policy depends on tells the enforcers of every node, at commit
-- and only if it commits, which account to read again (channel skiff_policy,
-- payload the account ID). PostgreSQL sends one notification per account and
-- transaction however many rows changed.
-- +goose StatementBegin
CREATE FUNCTION skiff_policy_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('skiff_policy', OLD.account_id::text);
    ELSE
        PERFORM pg_notify('skiff_policy', NEW.account_id::text);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION skiff_policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE ON folder_shares
    FOR EACH ROW EXECUTE FUNCTION skiff_policy_changed();
CREATE TRIGGER policy_changed AFTER UPDATE OF deleted_at ON project_folders
    FOR EACH ROW EXECUTE FUNCTION skiff_policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION skiff_policy_changed();
CREATE TRIGGER policy_changed_update AFTER UPDATE ON users
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role OR OLD.group_id IS DISTINCT FROM NEW.group_id
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION skiff_policy_changed();

-- +goose Down
DROP TRIGGER policy_changed_update ON users;
DROP TRIGGER policy_changed ON users;
DROP TRIGGER default_group ON users;
DROP TRIGGER builtin_groups ON accounts;
DROP TABLE folder_shares, project_folders;
ALTER TABLE users DROP COLUMN group_id;
DROP TABLE groups;
DROP FUNCTION skiff_policy_changed(), skiff_user_default_group(), skiff_account_created(), skiff_add_builtin_groups(uuid);
