-- +goose Up
-- One login namespace: an email (case-insensitively) names at most one principal
-- that can log in, a live user or a staff member, so the login lookup can never
-- find two. users_email_live and staff_email kept each table unique on its own;
-- nothing stopped a user from taking a staff member's email (then neither could
-- log in).
--
-- login_emails holds every live login email, lower-cased, with its one owner.
-- Triggers on users and staff keep it in step in the same statement, so a clash
-- fails the write with unique_violation (23505), which the service reports as
-- "this email is already in use". The table has no grants: only the triggers
-- (SECURITY DEFINER, as the tables' owner) write it.
--
-- A deleted user's email is released: a soft-deleted user cannot log in, so
-- their email leaves the namespace, and another user or a staff member may take
-- it (as before: users_email_live is partial). Restoring a user puts the email
-- back, and fails with a user error if it has been taken meanwhile.
CREATE TABLE login_emails (
    email     text PRIMARY KEY CHECK (email = lower(email)),
    user_id   uuid UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    staff_id  uuid UNIQUE REFERENCES staff (id) ON DELETE CASCADE,
    CHECK ((user_id IS NULL) <> (staff_id IS NULL))
);

-- Existing clashes (a live user with a staff member's email) are resolved in
-- favour of the staff member: the clash can only have been made by a user or
-- an owner choosing that email, which is the takeover this migration closes.
-- The user keeps everything but their email, which becomes
-- "email-clash-<user id>@invalid" (a reserved domain: nothing is ever sent to
-- it, no one can claim it); an owner or administrator gives them a real one
-- with updateUser. The change is recorded in the account's audit trail as
-- user.email_clash_resolved (by SYSTEM), before and after.
-- (Row-level security is forced on the owner too: the staff scope, for this
-- transaction only, lets the migration read and change every account's rows.)
SELECT set_config('skiff.scope', 'staff', true);
INSERT INTO audit_events (account_id, actor_kind, actor_name, kind, target_kind, target_id, before, after)
SELECT u.account_id, 'SYSTEM', 'migration 00040', 'user.email_clash_resolved', 'User', u.id,
       jsonb_build_object('email', u.email),
       jsonb_build_object('email', 'email-clash-' || u.id || '@invalid')
  FROM users u
 WHERE u.deleted_at IS NULL AND EXISTS (SELECT FROM staff s WHERE lower(s.email) = lower(u.email));
UPDATE users u SET email = 'email-clash-' || u.id || '@invalid'
 WHERE u.deleted_at IS NULL AND EXISTS (SELECT FROM staff s WHERE lower(s.email) = lower(u.email));

INSERT INTO login_emails (email, staff_id) SELECT lower(email), id FROM staff;
INSERT INTO login_emails (email, user_id) SELECT lower(email), id FROM users WHERE deleted_at IS NULL;
SELECT set_config('skiff.scope', '', true);

-- +goose StatementBegin
CREATE FUNCTION skiff_login_emails_users() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM login_emails WHERE user_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
        INSERT INTO login_emails (email, user_id) VALUES (lower(NEW.email), NEW.id);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION skiff_login_emails_staff() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM login_emails WHERE staff_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO login_emails (email, staff_id) VALUES (lower(NEW.email), NEW.id);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION skiff_login_emails_users(), skiff_login_emails_staff() FROM PUBLIC;

-- AFTER ... FOR EACH ROW: the row is written (and passed its own checks) first.
-- Updates that change neither the email nor deleted_at skip the trigger.
CREATE TRIGGER login_emails_insert AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION skiff_login_emails_users();
CREATE TRIGGER login_emails_update AFTER UPDATE OF email, deleted_at ON users
    FOR EACH ROW WHEN (lower(OLD.email) IS DISTINCT FROM lower(NEW.email)
                       OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL))
    EXECUTE FUNCTION skiff_login_emails_users();
CREATE TRIGGER login_emails_delete AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION skiff_login_emails_users();
CREATE TRIGGER login_emails_insert AFTER INSERT ON staff
    FOR EACH ROW EXECUTE FUNCTION skiff_login_emails_staff();
CREATE TRIGGER login_emails_update AFTER UPDATE OF email ON staff
    FOR EACH ROW WHEN (lower(OLD.email) IS DISTINCT FROM lower(NEW.email))
    EXECUTE FUNCTION skiff_login_emails_staff();
CREATE TRIGGER login_emails_delete AFTER DELETE ON staff
    FOR EACH ROW EXECUTE FUNCTION skiff_login_emails_staff();

-- +goose Down
DROP TRIGGER login_emails_insert ON users;
DROP TRIGGER login_emails_update ON users;
DROP TRIGGER login_emails_delete ON users;
DROP TRIGGER login_emails_insert ON staff;
DROP TRIGGER login_emails_update ON staff;
DROP TRIGGER login_emails_delete ON staff;
DROP FUNCTION skiff_login_emails_users(), skiff_login_emails_staff();
DROP TABLE login_emails;
