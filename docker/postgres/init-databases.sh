#!/usr/bin/env bash
# Runs once, as the PostgreSQL superuser, on the first start of the data volume
# (docker-entrypoint-initdb.d): the only place the superuser is used. Airflow and MLflow each get
# a login role without SUPERUSER, CREATEDB or CREATEROLE, and a database that role owns.
#
# Idempotent: run it again on a running stack to add a missing role or database, or to apply a
# password changed in .env (then restart the services):
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/10-init-databases.sh
# Passwords reach psql through the environment (\getenv), never through its arguments.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env}"
: "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD in .env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
\getenv airflow_password AIRFLOW_DB_PASSWORD
\getenv mlflow_password MLFLOW_DB_PASSWORD

SELECT format('CREATE ROLE %I', name) FROM unnest(ARRAY['airflow', 'mlflow']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec
ALTER ROLE airflow WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'airflow_password';
ALTER ROLE mlflow WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'mlflow_password';

SELECT format('CREATE DATABASE %I OWNER %I', name, name) FROM unnest(ARRAY['airflow', 'mlflow']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name) \gexec
-- Each role reaches its own database only.
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
SQL
