-- +goose Up
-- Every node keeps the dedicated IPs in use (address -> account and its host
-- keys) in memory, so that routing an SFTP connection costs no query. A
-- provisioning, a release or a change of an account's host keys tells every
-- node to read them again (channel skiff_dedicated_ips), at commit and only
-- if it commits. See docs/DEDICATED_IPS.md. The payload is empty: changes are
-- rare (support staff make them) and a node re-reads the whole list, which
-- is small.
-- +goose StatementBegin
CREATE FUNCTION skiff_dedicated_ips_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('skiff_dedicated_ips', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER dedicated_ips_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dedicated_ips
    FOR EACH STATEMENT EXECUTE FUNCTION skiff_dedicated_ips_changed();
CREATE TRIGGER dedicated_ips_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON host_keys
    FOR EACH STATEMENT EXECUTE FUNCTION skiff_dedicated_ips_changed();

-- +goose Down
DROP TRIGGER dedicated_ips_changed ON host_keys;
DROP TRIGGER dedicated_ips_changed ON dedicated_ips;
DROP FUNCTION skiff_dedicated_ips_changed();
