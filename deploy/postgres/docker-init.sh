#!/usr/bin/env bash
# PostgreSQL container init: the same roles and schemas as a local set-up, with one password
# per role from the environment (never from the repository): <ROLE>_DB_PASSWORD for the
# runtime roles, <ROLE>_OWNER_DB_PASSWORD for the schema owners (roles.sql). Refuses to run
# with a missing or shared password. Safe to run again on an existing volume
# (`docker compose exec postgres bash /deploy/docker-init.sh`), e.g. after rotating passwords.
set -euo pipefail
roles=()
for service in order_api inventory payment notifier webhooks; do roles+=("$service" "${service}_owner"); done
declare -A seen=()
for role in "${roles[@]}"; do
    var="${role^^}_DB_PASSWORD"
    pw="${!var:-}"
    if [ "${#pw}" -lt 16 ]; then
        echo "docker-init: $var is missing or shorter than 16 characters (deploy/compose-env.sh generates one)" >&2
        exit 1
    fi
    if [ -n "${seen[$pw]:-}" ]; then
        echo "docker-init: $var is the same as ${seen[$pw]}; every role needs its own password" >&2
        exit 1
    fi
    seen[$pw]="$var"
done
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "BEGIN;" -f /deploy/roles.sql -c "COMMIT;"
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /deploy/schemas.sql
for role in "${roles[@]}"; do
    var="${role^^}_DB_PASSWORD"
    # From stdin, not -c: psql substitutes :"role" and :'pw' (quoted) only in scripts.
    echo "ALTER ROLE :\"role\" PASSWORD :'pw';" |
        psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v role="$role" -v pw="${!var}" >/dev/null
done
