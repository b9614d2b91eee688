-- +goose Up
-- Live SFTP activity (issue #15, the sftpActivity subscription): each batch a
-- node's recorder writes (one INSERT statement) notifies, at its commit, one
-- line per account and node it wrote for: "<account> <first id> <last id>
-- <node>". Every node's subscribers then read those rows, under their own
-- principal, from the account's log. The payload names no user, path or
-- action: only the account's readers learn what happened. A statement-level
-- trigger adds one small query per batch, nothing per event.
-- +goose StatementBegin
CREATE FUNCTION skiff_sftp_activity_recorded() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('skiff_sftp_activity',
                      account_id::text || ' ' || min(id)::text || ' ' || max(id)::text || ' ' || node)
       FROM recorded
      GROUP BY account_id, node;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER sftp_activity_recorded AFTER INSERT ON sftp_activity
    REFERENCING NEW TABLE AS recorded
    FOR EACH STATEMENT EXECUTE FUNCTION skiff_sftp_activity_recorded();

-- +goose Down
DROP TRIGGER sftp_activity_recorded ON sftp_activity;
DROP FUNCTION skiff_sftp_activity_recorded();
