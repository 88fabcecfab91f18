#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ are installed, running and prepared for the services:
# installs them with apt when missing (Debian/Ubuntu), starts them when stopped, enables the
# RabbitMQ management UI, creates the service roles and the `orders` database with one schema
# per service. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
DB_NAME="${ORDERS_DB_NAME:-orders}"

apt_install() {
    say "installing $* with apt-get (needs root)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! command -v psql >/dev/null 2>&1; then
    apt_install postgresql
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        version="$(ls /etc/postgresql | sort -V | tail -1)"
        say "starting PostgreSQL $version"
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -U "${PGSUPERUSER:-postgres}" -v ON_ERROR_STOP=1 -q "$@"; }
if ! psql_admin -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
    # A fresh Debian install authenticates local connections by peer; the services connect over
    # TCP as their own roles, which needs trust (or passwords) for 127.0.0.1.
    hba="$(ls /etc/postgresql/*/main/pg_hba.conf | tail -1)"
    say "allowing trusted local TCP connections in $hba (development set-up)"
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(host\s+all\s+all\s+::1\/128\s+)\S+/\1trust/' "$hba"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main reload
fi
# Five services with a pool each, times the tests running side by side, need more than the
# default 100 connections.
if [ "$(psql_admin -d postgres -tAc 'SHOW max_connections')" -lt 300 ]; then
    say "raising PostgreSQL max_connections to 300 (restarts PostgreSQL once)"
    psql_admin -d postgres -c "ALTER SYSTEM SET max_connections = 300" >/dev/null
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main restart
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
say "creating the service roles (runtime and schema owner, deploy/postgres/roles.sql) and the '$DB_NAME' database"
psql_admin -d postgres -c "BEGIN;" -f deploy/postgres/roles.sql -c "COMMIT;" >/dev/null
psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1 \
    || psql_admin -d postgres -c "CREATE DATABASE \"$DB_NAME\""
psql_admin -d "$DB_NAME" -f deploy/postgres/schemas.sql >/dev/null

# --- RabbitMQ ---------------------------------------------------------------------------
if ! command -v rabbitmqctl >/dev/null 2>&1; then
    apt_install rabbitmq-server
fi
if ! rabbitmqctl -q status >/dev/null 2>&1; then
    say "starting RabbitMQ"
    $SUDO rabbitmq-server -detached
fi
rabbitmqctl -q await_startup --timeout 90 >/dev/null 2>&1 || true
if ! rabbitmqctl -q list_vhosts >/dev/null 2>&1; then
    # The node runs but the app was stopped (rabbitmqctl stop_app).
    rabbitmqctl -q start_app >/dev/null
fi
if ! rabbitmq-plugins -q list -e rabbitmq_management 2>/dev/null | grep -q rabbitmq_management; then
    say "enabling the RabbitMQ management UI"
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
fi
for _ in $(seq 1 30); do
    curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null \
    || { echo "RabbitMQ management API is not reachable on 127.0.0.1:15672" >&2; exit 1; }
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
# --- Chromium (the docs page is tested in a real headless browser) -------------------------
if [ "${SKIP_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    apt_install chromium
fi
say "PostgreSQL and RabbitMQ are ready"
