-- +goose Up
-- Two-factor (TOTP, RFC 6238) for GraphQL logins. One row per principal with
-- TOTP started or on: a user's (with their account, tenant-scoped) or a staff
-- member's (staff scope). The login path (auth scope) reads the row and
-- records the last accepted time step, so a code works once.
-- recovery_hashes are SHA-256 (hex) of the unused recovery codes; a used code
-- is removed from the array in the statement that accepts it.
CREATE TABLE totp (
    user_id          uuid UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    account_id       uuid REFERENCES accounts (id) ON DELETE CASCADE,
    staff_id         uuid UNIQUE REFERENCES staff (id) ON DELETE CASCADE,
    secret           text NOT NULL,
    created_at       timestamptz NOT NULL,
    confirmed_at     timestamptz,
    last_step        bigint NOT NULL DEFAULT 0,
    recovery_hashes  text[] NOT NULL DEFAULT '{}',
    CHECK ((user_id IS NOT NULL AND account_id IS NOT NULL AND staff_id IS NULL)
        OR (user_id IS NULL AND account_id IS NULL AND staff_id IS NOT NULL))
);
ALTER TABLE totp ENABLE ROW LEVEL SECURITY;
ALTER TABLE totp FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON totp USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
CREATE POLICY staff ON totp USING (skiff_scope() = 'staff' AND staff_id IS NOT NULL)
    WITH CHECK (skiff_scope() = 'staff' AND staff_id IS NOT NULL);
CREATE POLICY auth ON totp USING (skiff_scope() = 'auth') WITH CHECK (skiff_scope() = 'auth');
GRANT SELECT, INSERT, UPDATE, DELETE ON totp TO skiff_app;

-- Owners may require TOTP of the account's owners and administrators.
ALTER TABLE accounts ADD COLUMN require_totp_for_admins boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE accounts DROP COLUMN require_totp_for_admins;
DROP TABLE totp;
