-- +goose Up
-- Transactional email outbox. A service inserts a row in the same transaction as
-- the change the email is about, so a committed change always gets its email and
-- a rolled-back one never does. The worker (scope 'outbox') sends due rows.
--
-- Life of a row: PENDING -> SENDING (claimed, in its own committed transaction,
-- just before the SMTP conversation) -> SENT, or back to PENDING with a later
-- next_attempt_at after a failure, or FAILED when retrying is pointless.
-- next_attempt_at is when a worker should next look at the row: for PENDING the
-- earliest retry, for SENDING the end of the claim's lease (a worker that died
-- mid-send leaves the row for another worker to retry after it).
CREATE TABLE outbox (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id       uuid NOT NULL REFERENCES accounts (id),
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z_]*$'),
    recipient        text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    data             jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'SENDING', 'SENT', 'FAILED')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text CHECK (length(last_error) <= 1000),
    subject          text NOT NULL DEFAULT '',
    message_id       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    CHECK ((status = 'SENT') = (sent_at IS NOT NULL))
);
-- The worker's queue: only rows that still need work, in due order.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('PENDING', 'SENDING');
-- account.notifications: newest first.
CREATE INDEX outbox_account ON outbox (account_id, created_at DESC, id DESC);
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
-- A tenant writes emails and reads their history; it never edits or deletes them.
CREATE POLICY tenant_read ON outbox FOR SELECT USING (account_id = skiff_account());
CREATE POLICY tenant_insert ON outbox FOR INSERT WITH CHECK (account_id = skiff_account());
-- The worker claims and records delivery across tenants.
CREATE POLICY worker_read ON outbox FOR SELECT USING (skiff_scope() = 'outbox');
CREATE POLICY worker_update ON outbox FOR UPDATE USING (skiff_scope() = 'outbox') WITH CHECK (skiff_scope() = 'outbox');
-- Support staff answer "did the email go out?".
CREATE POLICY staff_read ON outbox FOR SELECT USING (skiff_scope() = 'staff');

GRANT SELECT, INSERT, UPDATE ON outbox TO skiff_app;

-- +goose Down
DROP TABLE outbox;
