#!/bin/sh
# Runs once, when the PostgreSQL container initialises an empty data volume (docker-entrypoint-initdb.d).
# POSTGRES_USER (spd) owns the database and every table: only migrations connect as it.
# The application connects as spd_app, which owns nothing; `manage.py grant_app_privileges`
# (run by the web container after each migrate, as the owner) grants it what it needs.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v app_password="$SPD_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE spd_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';
SQL
