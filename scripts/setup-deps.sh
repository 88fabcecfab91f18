#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ are installed, running and prepared for the services:
# installs them with apt when missing (Debian/Ubuntu), starts them when stopped, enables the
# RabbitMQ management UI, creates the service roles and the `orders` database with one schema
# per service. Safe to run again and again, as root or as a user with sudo. What only the tests
# need (Chromium, the Python verifier) is scripts/setup-test-deps.sh (`make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
DB_NAME="${ORDERS_DB_NAME:-orders}"

# curl talks to RabbitMQ's management API here and to the services' health checks in run.sh.
command -v curl >/dev/null 2>&1 || apt_install curl

# --- PostgreSQL -------------------------------------------------------------------------
# The client tools, and a server unless one already answers on 127.0.0.1:5432. The client alone
# (psql, pg_isready, even pg_ctlcluster: postgresql-client brings postgresql-common) does not
# mean a server is installed; its binary does.
if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then
    apt_install postgresql-client
fi
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
wait_pg() { for _ in $(seq 1 30); do pg_up && return 0; sleep 1; done; return 1; }
server_installed() {
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || command -v postgres >/dev/null 2>&1
}
if ! pg_up && ! server_installed; then
    apt_install postgresql
fi
psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -U "${PGSUPERUSER:-postgres}" -v ON_ERROR_STOP=1 -q "$@"; }
# Runs a command as the user that owns the server's files (PostgreSQL refuses to run as root).
as_user() {
    local user="$1"; shift
    if [ "$(id -un)" = "$user" ]; then "$@"
    elif [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"
    else sudo -u "$user" -- "$@"
    fi
}
# start | reload | restart the local server with whatever manages it here: Debian's
# pg_ctlcluster, else systemd, else pg_ctl on the data directory (from $PGDATA or asked of the
# running server). Fails when none applies; the caller says what to do by hand.
pg_service() {
    local action="$1" version data pg_ctl
    version="$(compgen -G '/etc/postgresql/*/main' | sort -V | tail -1 | cut -d/ -f4 || true)"
    if [ -n "$version" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main "$action"
    elif [ -d /run/systemd/system ] && systemctl list-unit-files postgresql.service >/dev/null 2>&1; then
        as_root systemctl "$action" postgresql
    else
        data="${PGDATA:-$(psql_admin -d postgres -tAc 'SHOW data_directory' 2>/dev/null || true)}"
        pg_ctl="$(command -v pg_ctl || compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' | sort -V | tail -1 || true)"
        [ -n "$data" ] && [ -n "$pg_ctl" ] || return 1
        case "$action" in
            start|restart) as_user "$(as_root stat -c %U "$data")" "$pg_ctl" "$action" -D "$data" -w -l "$data/server.log" ;;
            *) as_user "$(as_root stat -c %U "$data")" "$pg_ctl" "$action" -D "$data" ;;
        esac
    fi
}
if ! pg_up; then
    say "starting PostgreSQL"
    pg_service start || true
    wait_pg || die "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started here: start it (with PGDATA set, this script uses pg_ctl), then run this again"
fi

if ! psql_admin -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
    # A fresh Debian install authenticates local connections by peer; the services connect over
    # TCP as their own roles, which needs trust (or passwords) for 127.0.0.1.
    hba="$(compgen -G '/etc/postgresql/*/main/pg_hba.conf' | sort -V | tail -1 || true)"
    [ -n "$hba" ] || die "cannot log in to PostgreSQL as ${PGSUPERUSER:-postgres} over 127.0.0.1: allow it (trust for 127.0.0.1/32 and ::1/128 in pg_hba.conf, development only) or set PGSUPERUSER"
    say "allowing trusted local TCP connections in $hba (development set-up)"
    as_root sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(host\s+all\s+all\s+::1\/128\s+)\S+/\1trust/' "$hba"
    pg_service reload || die "changed $hba but could not reload PostgreSQL: reload it, then run this again"
    psql_admin -d postgres -c 'SELECT 1' >/dev/null || die "still cannot log in to PostgreSQL over 127.0.0.1 (see $hba)"
fi
# Five services with a pool each, times the tests running side by side, need more than the
# default 100 connections. The setting takes effect only when the server restarts.
max_connections() { psql_admin -d postgres -tAc 'SHOW max_connections'; }
if [ "$(max_connections)" -lt 300 ]; then
    say "raising PostgreSQL max_connections to 300 (restarts PostgreSQL once)"
    psql_admin -d postgres -c "ALTER SYSTEM SET max_connections = 300" >/dev/null
    pg_service restart || true
    wait_pg || die "PostgreSQL did not come back after the restart"
    if [ "$(max_connections)" -lt 300 ]; then
        # `make run` works with fewer; `make test` refuses to start (scripts/setup-test-deps.sh).
        printf '\033[1;33m[setup]\033[0m %s\n' "max_connections is set to 300 (postgresql.auto.conf) but PostgreSQL still runs with $(max_connections): nothing here could restart it (no pg_ctlcluster, systemd or pg_ctl with a known data directory). Restart PostgreSQL yourself; the tests need it." >&2
    fi
fi
say "creating the service roles (runtime and schema owner, deploy/postgres/roles.sql) and the '$DB_NAME' database"
psql_admin -d postgres -c "BEGIN;" -f deploy/postgres/roles.sql -c "COMMIT;" >/dev/null
psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1 \
    || psql_admin -d postgres -c "CREATE DATABASE \"$DB_NAME\""
psql_admin -d "$DB_NAME" -f deploy/postgres/schemas.sql >/dev/null

# --- RabbitMQ ---------------------------------------------------------------------------
# The CLI tools must run as root (Debian's wrapper then switches to the rabbitmq user, whose
# Erlang cookie they need); run as anyone else they refuse.
rmq_ctl() { as_root rabbitmqctl "$@"; }
rmq_plugins() { as_root rabbitmq-plugins "$@"; }
if ! command -v rabbitmqctl >/dev/null 2>&1 && ! as_root sh -c 'command -v rabbitmqctl' >/dev/null 2>&1; then
    apt_install rabbitmq-server
fi
if ! rmq_ctl -q status >/dev/null 2>&1; then
    say "starting RabbitMQ"
    as_root rabbitmq-server -detached
fi
rmq_ctl -q await_startup --timeout 90 >/dev/null 2>&1 || true
if ! rmq_ctl -q list_vhosts >/dev/null 2>&1; then
    # The node runs but the app was stopped (rabbitmqctl stop_app).
    rmq_ctl -q start_app >/dev/null
fi
if ! rmq_plugins -q list -e rabbitmq_management 2>/dev/null | grep -q rabbitmq_management; then
    say "enabling the RabbitMQ management UI"
    rmq_plugins -q enable rabbitmq_management >/dev/null
fi
for _ in $(seq 1 30); do
    curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null \
    || die "RabbitMQ management API is not reachable on 127.0.0.1:15672"
# One broker user per service, allowed only its own queues and its own event types, in the
# vhost `orders` (deploy/rabbitmq/setup.sh). Passwords are generated once into var/rabbitmq.env
# (mode 0600, git-ignored); scripts/run.sh gives each service its own AMQP_URL from it.
mkdir -p var
if [ ! -s var/rabbitmq.env ]; then
    say "generating the services' RabbitMQ passwords in var/rabbitmq.env"
    (
        umask 077
        for name in ORDER_API INVENTORY PAYMENT NOTIFIER WEBHOOK_DISPATCHER; do
            echo "RABBITMQ_${name}_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        done > var/rabbitmq.env
    )
fi
set -a; . var/rabbitmq.env; set +a
RABBITMQ_ADMIN_URL=http://127.0.0.1:15672 RABBITMQ_ADMIN_USER=guest RABBITMQ_ADMIN_PASSWORD=guest \
    RABBITMQ_VHOST="${ORDERS_RABBITMQ_VHOST:-orders}" sh deploy/rabbitmq/setup.sh >/dev/null
say "PostgreSQL and RabbitMQ are ready"
