-- +goose Up
-- The "trial ends in 3 days" email goes out once per account: the hourly job
-- claims the account by setting this column in the same transaction as the email.
ALTER TABLE accounts ADD COLUMN sftp_trial_reminder_sent_at timestamptz;
CREATE INDEX accounts_trial_reminder_due ON accounts (sftp_trial_ends_at)
    WHERE sftp_status = 'TRIAL' AND sftp_trial_reminder_sent_at IS NULL;

-- One-time tokens sent by email: invitations (set a first password) and password
-- resets. Only the SHA-256 of the random secret is stored, so a database leak
-- does not let anyone redeem one. A token is spent (used_at) or revoked once.
CREATE TABLE one_time_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id),
    user_id     uuid NOT NULL,
    purpose     text NOT NULL CHECK (purpose IN ('INVITATION', 'PASSWORD_RESET')),
    hash        bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id)
);
CREATE INDEX one_time_tokens_outstanding ON one_time_tokens (account_id, user_id)
    WHERE used_at IS NULL AND revoked_at IS NULL;
CREATE INDEX one_time_tokens_expires ON one_time_tokens (expires_at);
ALTER TABLE one_time_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE one_time_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON one_time_tokens USING (account_id = skiff_account()) WITH CHECK (account_id = skiff_account());
-- Redeeming a token starts before the tenant is known: the auth path may find a
-- token by its hash (and nothing else); the change itself runs in the tenant.
CREATE POLICY auth_read ON one_time_tokens FOR SELECT USING (skiff_scope() = 'auth');
-- The hourly clean-up removes long-expired tokens across tenants.
CREATE POLICY staff ON one_time_tokens USING (skiff_scope() = 'staff') WITH CHECK (skiff_scope() = 'staff');

-- Password-reset requests per email address (SHA-256 of the lower-cased address,
-- so addresses that match no user are not stored in the clear), in fixed windows.
-- Keyed by address whether or not a user has it, so the limit reveals nothing.
CREATE TABLE password_reset_requests (
    email_hash         bytea PRIMARY KEY CHECK (length(email_hash) = 32),
    window_started_at  timestamptz NOT NULL,
    requests           integer NOT NULL CHECK (requests >= 0)
);
ALTER TABLE password_reset_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_reset_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY auth ON password_reset_requests USING (skiff_scope() IN ('auth', 'staff'))
    WITH CHECK (skiff_scope() IN ('auth', 'staff'));

GRANT SELECT, INSERT, UPDATE, DELETE ON one_time_tokens, password_reset_requests TO skiff_app;

-- +goose Down
DROP TABLE password_reset_requests, one_time_tokens;
ALTER TABLE accounts DROP COLUMN sftp_trial_reminder_sent_at;
