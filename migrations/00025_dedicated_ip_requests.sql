-- +goose Up
-- Owners' requests for a dedicated IP, queued for support (see
-- docs/DEDICATED_IPS.md). Provisioning a dedicated IP to the account closes
-- its open request (PROVISIONED); support may instead decline it with a
-- reason (DECLINED). Either way the requester is emailed.
CREATE TABLE dedicated_ip_requests (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid NOT NULL REFERENCES accounts (id),
    requested_by    uuid NOT NULL,
    message         text NOT NULL DEFAULT '' CHECK (length(message) <= 2000),
    created_at      timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'OPEN' CHECK (state IN ('OPEN', 'PROVISIONED', 'DECLINED')),
    handled_at      timestamptz,
    -- The support staff member who provisioned or declined it.
    handled_by      uuid REFERENCES staff (id),
    -- The address provisioned (PROVISIONED).
    address         inet,
    -- Why support declined it (DECLINED), as the requester was told.
    decline_reason  text CHECK (length(decline_reason) BETWEEN 1 AND 2000),
    FOREIGN KEY (account_id, requested_by) REFERENCES users (account_id, id),
    CHECK ((state = 'OPEN') = (handled_at IS NULL)),
    CHECK ((state = 'PROVISIONED') = (address IS NOT NULL)),
    CHECK ((state = 'DECLINED') = (decline_reason IS NOT NULL))
);
-- One open request per account.
CREATE UNIQUE INDEX dedicated_ip_requests_open ON dedicated_ip_requests (account_id) WHERE state = 'OPEN';
-- The staff queue, oldest first.
CREATE INDEX dedicated_ip_requests_queue ON dedicated_ip_requests (created_at, id);
ALTER TABLE dedicated_ip_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE dedicated_ip_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON dedicated_ip_requests USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY staff ON dedicated_ip_requests USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
GRANT SELECT, INSERT, UPDATE ON dedicated_ip_requests TO skiff_app;

-- Provisioning and declining run in the staff scope (the pool is shared by
-- every account), and write the requester's email in the same transaction:
-- staff may enqueue these two kinds only, to any account.
CREATE POLICY staff_insert ON outbox FOR INSERT
    WITH CHECK (skiff_scope() = 'staff' AND kind IN ('dedicated_ip_provisioned', 'dedicated_ip_declined'));

-- +goose Down
DROP POLICY staff_insert ON outbox;
DROP TABLE dedicated_ip_requests;
