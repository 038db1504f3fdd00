#!/bin/sh
# Rendered by orchestrator. Do not edit: change stack.yaml and render again.
# Gives each consumer of the shared PostgreSQL its own role and database.
# Safe to run on every start: it creates only what is missing and sets each
# role's password from its secret file.
set -eu
PGPASSWORD="$(cat /run/secrets/postgres-password)"
export PGPASSWORD
# The server may still be restarting after its own first-boot init.
tries=0
until pg_isready --quiet; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "postgres-init: $PGHOST does not accept connections after 60 s" >&2
    exit 1
  fi
  sleep 1
done
psql -v ON_ERROR_STOP=1 --quiet <<'SQL'
-- app
\set pw `cat /run/secrets/db-app-password`
SELECT 'CREATE ROLE "app"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app')\gexec
ALTER ROLE "app" WITH LOGIN NOCREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE "app" OWNER "app"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'app')\gexec
REVOKE CONNECT ON DATABASE "app" FROM PUBLIC;
-- kestra
\set pw `cat /run/secrets/db-kestra-password`
SELECT 'CREATE ROLE "kestra"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kestra')\gexec
ALTER ROLE "kestra" WITH LOGIN NOCREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE "kestra" OWNER "kestra"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'kestra')\gexec
REVOKE CONNECT ON DATABASE "kestra" FROM PUBLIC;
SQL
echo "postgres-init: roles and databases are in place"
