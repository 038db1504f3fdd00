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
-- postiz
\set pw `cat /run/secrets/db-postiz-password`
SELECT 'CREATE ROLE "postiz"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postiz')\gexec
ALTER ROLE "postiz" WITH LOGIN NOCREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE "postiz" OWNER "postiz"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'postiz')\gexec
REVOKE CONNECT ON DATABASE "postiz" FROM PUBLIC;
-- temporal
\set pw `cat /run/secrets/db-temporal-password`
SELECT 'CREATE ROLE "temporal"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal')\gexec
ALTER ROLE "temporal" WITH LOGIN NOCREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE "temporal" OWNER "temporal"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal')\gexec
REVOKE CONNECT ON DATABASE "temporal" FROM PUBLIC;
-- worker
\set pw `cat /run/secrets/db-worker-password`
SELECT 'CREATE ROLE "worker"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'worker')\gexec
ALTER ROLE "worker" WITH LOGIN NOCREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE "worker" OWNER "worker"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'worker')\gexec
REVOKE CONNECT ON DATABASE "worker" FROM PUBLIC;
SQL
echo "postgres-init: roles and databases are in place"
