-- +goose Up
-- A session that login started enrol-only (two-factor required and not on)
-- after checking the password: it may turn two-factor on once without
-- giving the password again (people.ConfirmTotpEnrolment). Any other
-- session, including one that became enrol-only later (the account began
-- to require two-factor, or it was turned off), must give the password, so
-- that a stolen token cannot enrol the thief's authenticator app.
ALTER TABLE tokens ADD COLUMN enrol_grant boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE tokens DROP COLUMN enrol_grant;
