#!/usr/bin/env bash
# PostgreSQL container init: the same roles and schemas as a local set-up, with passwords from
# the environment (never from the repository).
set -euo pipefail
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "BEGIN;" -f /deploy/roles.sql -c "COMMIT;"
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /deploy/schemas.sql
for role in order_api inventory payment notifier webhooks; do
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v role="$role" -v pw="$SERVICE_DB_PASSWORD" \
        -c "ALTER ROLE :\"role\" PASSWORD :'pw'"
done
