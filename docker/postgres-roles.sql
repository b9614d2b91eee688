-- Skiff's database roles, made when the postgres container of
-- docker-compose.yml initialises an empty data folder (it runs the files of
-- /docker-entrypoint-initdb.d as its superuser). Also the first step of a
-- restore onto a new server: psql -U postgres -f docker/postgres-roles.sql
-- (with the SKIFF_*_PASSWORD variables set). docs/OPERATIONS.md
-- ("Database", "Backup and restore") explains them:
--   skiff_owner    logs in for migrations (SKIFF_MIGRATE_DATABASE_URL) and
--                  owns the database and its tables;
--   skiff_app      what every transaction switches to: no login, owns
--                  nothing, no BYPASSRLS, so row-level security applies;
--   skiff_service  logs in for the service (SKIFF_DATABASE_URL) and may
--                  only become skiff_app;
--   skiff_backup   logs in for pg_dump: reads every row (BYPASSRLS,
--                  pg_read_all_data) and can change nothing.
-- The passwords come from the environment (psql 15's \getenv).
\getenv owner_password SKIFF_OWNER_PASSWORD
\getenv service_password SKIFF_SERVICE_PASSWORD
\getenv backup_password SKIFF_BACKUP_PASSWORD

CREATE ROLE skiff_owner LOGIN PASSWORD :'owner_password';
CREATE DATABASE skiff OWNER skiff_owner;
CREATE ROLE skiff_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
GRANT skiff_app TO skiff_owner;
CREATE ROLE skiff_service LOGIN PASSWORD :'service_password' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
GRANT skiff_app TO skiff_service;
CREATE ROLE skiff_backup LOGIN PASSWORD :'backup_password' NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE;
GRANT pg_read_all_data TO skiff_backup;
