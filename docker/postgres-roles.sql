-- Skiff's database roles, made when the postgres container of
-- docker-compose.yml initialises an empty data folder (it runs the files of
-- /docker-entrypoint-initdb.d as its superuser). docs/OPERATIONS.md
-- ("Database") explains them:
--   skiff_owner    logs in for migrations (SKIFF_MIGRATE_DATABASE_URL) and
--                  owns the database and its tables;
--   skiff_app      what every transaction switches to: no login, owns
--                  nothing, no BYPASSRLS, so row-level security applies;
--   skiff_service  logs in for the service (SKIFF_DATABASE_URL) and may
--                  only become skiff_app.
-- The passwords come from the container's environment (psql 15's \getenv).
\getenv owner_password SKIFF_OWNER_PASSWORD
\getenv service_password SKIFF_SERVICE_PASSWORD

CREATE ROLE skiff_owner LOGIN PASSWORD :'owner_password';
CREATE DATABASE skiff OWNER skiff_owner;
CREATE ROLE skiff_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
GRANT skiff_app TO skiff_owner;
CREATE ROLE skiff_service LOGIN PASSWORD :'service_password' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
GRANT skiff_app TO skiff_service;
