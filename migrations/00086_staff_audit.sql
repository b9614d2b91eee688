-- +goose Up
-- Audit trail of changes to the support staff themselves (issue #19: `skiff
-- admin create-staff` left no trace). audit_events belongs to an account;
-- these events belong to none, and only staff (and the system, through the
-- staff scope) read or write them. Rows are only ever added.
CREATE TABLE staff_audit_events (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_kind   text NOT NULL CHECK (actor_kind IN ('STAFF', 'SYSTEM')),
    actor_id     uuid,
    actor_name   text NOT NULL DEFAULT '',
    kind         text NOT NULL,
    target_id    uuid,
    after        jsonb
);
CREATE INDEX staff_audit_events_at ON staff_audit_events (at DESC, id DESC);
ALTER TABLE staff_audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE staff_audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY staff ON staff_audit_events USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
GRANT SELECT, INSERT ON staff_audit_events TO skiff_app;

-- +goose Down
DROP TABLE staff_audit_events;
