-- +goose Up
-- Live SFTP sessions across nodes (issue #15 item 3). Each node keeps its
-- sessions in memory and publishes one compact row per logged-in connection
-- here, refreshed every few seconds (bytes moved, current operation), never
-- per packet. A node's row in sftp_nodes is its heartbeat: a node that stops
-- refreshing it expires (expires_at), its sessions are no longer listed, and
-- the next live node deletes it and, by cascade, its sessions.
--
-- sftp_nodes holds no tenant data: any transaction may read the names and
-- heartbeats; only a node (scope 'sftp_node') writes them.
CREATE TABLE sftp_nodes (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    started_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
ALTER TABLE sftp_nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE sftp_nodes FORCE ROW LEVEL SECURITY;
CREATE POLICY node ON sftp_nodes USING (skiff_scope() = 'sftp_node') WITH CHECK (skiff_scope() = 'sftp_node');
CREATE POLICY read ON sftp_nodes FOR SELECT USING (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON sftp_nodes TO skiff_app;

-- One row per logged-in SFTP connection. No foreign key to accounts or
-- users: a node must always be able to publish what it holds (a session of
-- a user deleted a moment ago ends anyway), and rows go with their node. An owner or administrator (in the
-- account's scope) or support staff (scope 'staff') asks for the end of a
-- session by setting end_requested_at; the node holding it hears of it by
-- notification and ends it.
CREATE TABLE sftp_sessions (
    id               uuid PRIMARY KEY,
    account_id       uuid NOT NULL,
    user_id          uuid NOT NULL,
    node_id          uuid NOT NULL REFERENCES sftp_nodes ON DELETE CASCADE,
    login            text NOT NULL,
    client_address   text NOT NULL,
    client_software  text NOT NULL,
    started_at       timestamptz NOT NULL,
    bytes_in         bigint NOT NULL DEFAULT 0,
    bytes_out        bigint NOT NULL DEFAULT 0,
    operation        text NOT NULL DEFAULT 'IDLE' CHECK (operation IN ('IDLE', 'UPLOADING', 'DOWNLOADING')),
    operation_path   text NOT NULL DEFAULT '',
    transfers        integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    end_requested_at timestamptz
);
CREATE INDEX sftp_sessions_account ON sftp_sessions (account_id, started_at, id);
CREATE INDEX sftp_sessions_node ON sftp_sessions (node_id);
ALTER TABLE sftp_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sftp_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sftp_sessions USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY staff ON sftp_sessions USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
CREATE POLICY node ON sftp_sessions USING (skiff_scope() = 'sftp_node') WITH CHECK (skiff_scope() = 'sftp_node');
GRANT SELECT, INSERT, UPDATE, DELETE ON sftp_sessions TO skiff_app;

-- Every change to a session row notifies channel skiff_sftp_sessions at
-- commit: "<account id> <session id> <event> <user id>", the event one of STARTED,
-- UPDATED, ENDED, or END_REQUESTED (a disconnect was asked for). Nodes end
-- the sessions they hold on END_REQUESTED after reading the row back, so a
-- forged notification ends nothing; subscriptions (GraphQL) hear the others.
-- +goose StatementBegin
CREATE FUNCTION skiff_sftp_session_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    ev text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        r := NEW; ev := 'STARTED';
    ELSIF TG_OP = 'DELETE' THEN
        r := OLD; ev := 'ENDED';
    ELSIF OLD.end_requested_at IS NULL AND NEW.end_requested_at IS NOT NULL THEN
        r := NEW; ev := 'END_REQUESTED';
    ELSE
        r := NEW; ev := 'UPDATED';
    END IF;
    PERFORM pg_notify('skiff_sftp_sessions', r.account_id::text || ' ' || r.id::text || ' ' || ev || ' ' || r.user_id::text);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER sftp_session_changed AFTER INSERT OR UPDATE OR DELETE ON sftp_sessions
    FOR EACH ROW EXECUTE FUNCTION skiff_sftp_session_changed();

-- +goose Down
DROP TABLE sftp_sessions;
DROP FUNCTION skiff_sftp_session_changed();
DROP TABLE sftp_nodes;
