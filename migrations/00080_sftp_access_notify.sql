-- +goose Up
-- Revocations reach every node within moments (issue #14 point 3). Whatever
-- may withdraw an open SFTP session's access notifies channel
-- skiff_sftp_access at commit (and only if it commits): a key deleted,
-- disabled or given an expiry, a password changed or reset, SFTP turned off,
-- a user deleted, moved to another group or given an IP allowlist, an
-- account's SFTP module or IP allowlist changed, a group's permissions
-- changed (jails). The payload is "<account id> <user id>" for one user, or
-- "<account id>" for the whole account. Every node re-checks, at once, its
-- open sessions of that user or account against the database (the session
-- gate, tenant/sftplogin Directory.LoginAllowed), and ends those whose
-- access is gone: the notification only says where to look, never what to
-- do, so a forged or repeated one costs a query per session and no more.
-- +goose StatementBegin
CREATE FUNCTION skiff_sftp_access_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('skiff_sftp_access', r.account_id::text || ' ' || r.id::text);
    ELSIF TG_TABLE_NAME = 'ssh_keys' THEN
        PERFORM pg_notify('skiff_sftp_access', r.account_id::text || ' ' || r.user_id::text);
    ELSIF TG_TABLE_NAME = 'accounts' THEN
        PERFORM pg_notify('skiff_sftp_access', r.id::text);
    ELSE
        PERFORM pg_notify('skiff_sftp_access', r.account_id::text);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER sftp_access_changed AFTER DELETE ON ssh_keys
    FOR EACH ROW EXECUTE FUNCTION skiff_sftp_access_changed();
CREATE TRIGGER sftp_access_changed_update AFTER UPDATE ON ssh_keys
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION skiff_sftp_access_changed();

CREATE TRIGGER sftp_access_changed AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION skiff_sftp_access_changed();
CREATE TRIGGER sftp_access_changed_update AFTER UPDATE ON users
    FOR EACH ROW WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash
        OR OLD.sftp_enabled IS DISTINCT FROM NEW.sftp_enabled
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
        OR OLD.group_id IS DISTINCT FROM NEW.group_id
        OR OLD.ip_allowlist IS DISTINCT FROM NEW.ip_allowlist)
    EXECUTE FUNCTION skiff_sftp_access_changed();

CREATE TRIGGER sftp_access_changed_update AFTER UPDATE ON accounts
    FOR EACH ROW WHEN (OLD.sftp_status IS DISTINCT FROM NEW.sftp_status
        OR OLD.sftp_trial_ends_at IS DISTINCT FROM NEW.sftp_trial_ends_at
        OR OLD.ip_allowlist IS DISTINCT FROM NEW.ip_allowlist)
    EXECUTE FUNCTION skiff_sftp_access_changed();

CREATE TRIGGER sftp_access_changed_update AFTER UPDATE ON groups
    FOR EACH ROW WHEN (OLD.permissions IS DISTINCT FROM NEW.permissions OR OLD.builtin IS DISTINCT FROM NEW.builtin)
    EXECUTE FUNCTION skiff_sftp_access_changed();

-- +goose Down
DROP TRIGGER sftp_access_changed_update ON groups;
DROP TRIGGER sftp_access_changed_update ON accounts;
DROP TRIGGER sftp_access_changed_update ON users;
DROP TRIGGER sftp_access_changed ON users;
DROP TRIGGER sftp_access_changed_update ON ssh_keys;
DROP TRIGGER sftp_access_changed ON ssh_keys;
DROP FUNCTION skiff_sftp_access_changed();
