-- +goose Up
-- Dedicated IPs: addresses of the deployment's pool (configured with
-- --dedicated-ip-pool, not stored) handed to one account each. The SFTP
-- listener routes a connection by the address it reached: on an account's
-- dedicated IP, logins resolve inside that account only (custom login or ID)
-- and the account's own host keys are presented. See docs/DEDICATED_IPS.md.
--
-- One row per address ever provisioned. A release keeps the row, with its
-- last account and released_at, so that the address cools down before it can
-- go to another account, and so that the same account can take it back.
CREATE TABLE dedicated_ips (
    -- A single host address: no prefixes.
    address         inet PRIMARY KEY
        CHECK (masklen(address) = CASE family(address) WHEN 4 THEN 32 ELSE 128 END),
    -- The account holding the address or, once released, the last one that did.
    account_id      uuid NOT NULL REFERENCES accounts (id),
    provisioned_at  timestamptz NOT NULL,
    released_at     timestamptz,
    CHECK (released_at IS NULL OR released_at >= provisioned_at)
);
-- One dedicated IP per account at a time.
CREATE UNIQUE INDEX dedicated_ips_account ON dedicated_ips (account_id) WHERE released_at IS NULL;
ALTER TABLE dedicated_ips ENABLE ROW LEVEL SECURITY;
ALTER TABLE dedicated_ips FORCE ROW LEVEL SECURITY;
-- Accounts read their own rows; only support staff provision and release.
CREATE POLICY tenant_read ON dedicated_ips FOR SELECT USING (account_id = skiff_account());
CREATE POLICY staff ON dedicated_ips USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');
-- SFTP login resolution and host-key selection map a destination to its account.
CREATE POLICY cross_read ON dedicated_ips FOR SELECT USING (skiff_scope() = 'directory');

GRANT SELECT, INSERT, UPDATE ON dedicated_ips TO skiff_app;

-- +goose Down
DROP TABLE dedicated_ips;
