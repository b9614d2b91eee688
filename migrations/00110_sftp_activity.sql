-- +goose Up
-- The SFTP activity log of each account (issue #15): every login and its
-- refusals, logout, transfer (one row at the transfer's close, never one per
-- WRITE), delete, rename, mkdir, rmdir, copy and permission refusal. Rows are
-- written in batches by each node's recorder (tenant/activity) on the
-- "activity" path, read by the account under the tenant policy, and deleted by
-- the retention purge. Nothing ever updates a row.
--
-- No foreign keys: a row outlives its user (deleted users keep their
-- history) and a check per row would slow the batches down.
-- id is a sequence, not a UUID: its index grows at its right edge.
CREATE TABLE sftp_activity (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   uuid NOT NULL,
    at           timestamptz NOT NULL,
    user_id      uuid NOT NULL,
    -- The login the client typed (a custom login or the login ID).
    login        text NOT NULL,
    action       text NOT NULL CHECK (action IN ('LOGIN', 'LOGOUT', 'UPLOAD', 'DOWNLOAD', 'DELETE',
                     'RENAME', 'MKDIR', 'RMDIR', 'COPY', 'PERMISSION_DENIED')),
    outcome      text NOT NULL CHECK (outcome IN ('SUCCESS', 'FAILED', 'INTERRUPTED', 'REFUSED')),
    -- Paths as the user sees them in their SFTP tree.
    path         text NOT NULL DEFAULT '',
    target_path  text NOT NULL DEFAULT '',
    bytes        bigint,
    duration_ms  bigint,
    -- Why it failed or was refused, as the operator sees it.
    reason       text NOT NULL DEFAULT '',
    client_addr  text NOT NULL DEFAULT '',
    node         text NOT NULL DEFAULT '',
    session_id   text NOT NULL DEFAULT '',
    -- The project folder an upload went to, and its path inside the folder
    -- (for the folders' upload digests).
    folder_id    uuid,
    folder_path  text
);
-- A user's activity over a time range (account.sftpActivity with userId,
-- user.sftpActivity), and the account's.
CREATE INDEX sftp_activity_user ON sftp_activity (account_id, user_id, at DESC, id DESC);
CREATE INDEX sftp_activity_account ON sftp_activity (account_id, at DESC, id DESC);
-- The uploads of a folder since its last digest.
CREATE INDEX sftp_activity_folder_uploads ON sftp_activity (account_id, folder_id, at)
    WHERE folder_id IS NOT NULL AND action = 'UPLOAD' AND outcome = 'SUCCESS';
-- The retention purge: rows arrive in time order, so a block range index
-- finds the oldest for almost nothing on each insert.
CREATE INDEX sftp_activity_at ON sftp_activity USING brin (at);
ALTER TABLE sftp_activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE sftp_activity FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sftp_activity FOR SELECT USING (account_id = skiff_account());
CREATE POLICY activity ON sftp_activity USING (skiff_scope() = 'activity') WITH CHECK (skiff_scope() = 'activity');
GRANT SELECT, INSERT, DELETE ON sftp_activity TO skiff_app;

-- Folder upload notifications: a member of a project folder asks for a
-- digest of what was uploaded to it. covered_until is the end of the time
-- the last digest covered; the next one lists uploads after it.
CREATE TABLE folder_upload_notifications (
    account_id     uuid NOT NULL REFERENCES accounts (id),
    folder_id      uuid NOT NULL,
    user_id        uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    covered_until  timestamptz NOT NULL,
    PRIMARY KEY (account_id, folder_id, user_id),
    FOREIGN KEY (account_id, folder_id) REFERENCES project_folders (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id)
);
CREATE INDEX folder_upload_notifications_due ON folder_upload_notifications (covered_until);
ALTER TABLE folder_upload_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE folder_upload_notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON folder_upload_notifications USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
-- The digest pass finds the accounts with a digest due; it writes in each
-- account's own transaction.
CREATE POLICY activity ON folder_upload_notifications FOR SELECT USING (skiff_scope() = 'activity');
GRANT SELECT, INSERT, UPDATE, DELETE ON folder_upload_notifications TO skiff_app;

-- +goose Down
DROP TABLE folder_upload_notifications;
DROP TABLE sftp_activity;
