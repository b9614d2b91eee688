-- +goose Up
-- The outbox worker deletes emails whose delivery is over (SENT or FAILED)
-- once they are older than the deployment's retention (skiff serve
-- --email-retention). Emails still to be sent are never deleted, whatever
-- the worker asks: the policy only lets it see finished ones for deletion.
CREATE POLICY worker_delete ON outbox FOR DELETE
    USING (skiff_scope() = 'outbox' AND status IN ('SENT', 'FAILED'));
GRANT DELETE ON outbox TO skiff_app;
CREATE INDEX outbox_finished ON outbox (created_at) WHERE status IN ('SENT', 'FAILED');

-- +goose Down
DROP INDEX outbox_finished;
REVOKE DELETE ON outbox FROM skiff_app;
DROP POLICY worker_delete ON outbox;
