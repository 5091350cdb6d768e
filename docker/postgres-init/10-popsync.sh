#!/bin/bash
# First start of the PostgreSQL container: a database and a user of its own for popsync's
# publication (runs, publications, metrics, reason_counts, portal accounts and audit log).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v popsync_password="$POPSYNC_DB_PASSWORD" <<'SQL'
CREATE USER popsync PASSWORD :'popsync_password';
CREATE DATABASE popsync OWNER popsync;
SQL
