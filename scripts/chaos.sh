#!/usr/bin/env bash
# `make chaos`: the crash test. The five services run as real processes on a database
# (`orders_chaos`) and a RabbitMQ vhost (`chaos`) of their own, on ports of their own (18180-18189);
# `loadgen chaos` places ORDERS orders (default 3000) from CONCURRENCY clients (default 32) that
# retry with their Idempotency-Key, at RATE orders/s (default 25), while it kills each service
# with SIGKILL in turn (the gateway too) and starts it again, stops and starts RabbitMQ
# (`rabbitmqctl stop_app`/`start_app`) and restarts PostgreSQL (`pg_ctlcluster restart`), in
# rounds for as long as orders are being placed. Then every client must hold its order's 201 (the
# same order id on replay), have exactly that one order, and the invariants (crates/invariants)
# must hold for every order. The figures are printed and saved in target/chaos/result.txt.
#
# It stops the shared PostgreSQL and RabbitMQ: nothing else should use them meanwhile. With
# CHAOS_SERVERS=private it starts a PostgreSQL cluster (`chaos`, port 5433) and a RabbitMQ node
# (`chaos@localhost`, ports 5673/15673) of its own instead, and removes them at the end, so it
# can run beside anything (needs root or sudo). PROFILE=release for optimised binaries (default:
# debug). See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${ORDERS:-3000}"
CONCURRENCY="${CONCURRENCY:-32}"
RATE="${RATE:-25}"
PROFILE="${PROFILE:-debug}"
CHAOS_SERVERS="${CHAOS_SERVERS:-shared}"
OUT=target/chaos
say() { printf '\033[1;31m[chaos]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

scripts/setup-deps.sh
bins=(--bin order-api --bin inventory --bin payment --bin notifier --bin webhook-dispatcher --bin loadgen)
say "building $PROFILE binaries"
if [ "$PROFILE" = release ]; then cargo build --release "${bins[@]}"; else cargo build "${bins[@]}"; fi
mkdir -p "$OUT"

PG_VERSION="$(ls /etc/postgresql | sort -V | tail -1)"
PRIVATE_RABBIT_DIR=""
# Whatever happens: the services stopped, RabbitMQ's application and PostgreSQL running again
# (loadgen does the same itself; this covers a loadgen that was killed), private servers removed.
cleanup() {
    local status=$?
    set +e
    for pids in "$OUT"/*/pids; do
        [ -f "$pids" ] || continue
        while read -r pid; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; done <"$pids"
        rm -f "$pids"
    done
    if [ "$CHAOS_SERVERS" = private ]; then
        # The private cluster goes: keep a failed run's database for a look.
        if [ "$status" != 0 ]; then
            pg_dump -h 127.0.0.1 -p 5433 -U "${PGSUPERUSER:-postgres}" orders_chaos >"$OUT/orders_chaos.sql" 2>/dev/null \
                && say "the run's database is dumped in $OUT/orders_chaos.sql"
        fi
        rabbitmqctl -n chaos@localhost -q stop >/dev/null 2>&1
        $SUDO pg_dropcluster --stop "$PG_VERSION" chaos >/dev/null 2>&1
        [ -n "$PRIVATE_RABBIT_DIR" ] && $SUDO rm -rf "$PRIVATE_RABBIT_DIR"
    else
        rabbitmqctl -q start_app >/dev/null 2>&1
        rabbitmqctl -q await_startup --timeout 90 >/dev/null 2>&1
        pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main status >/dev/null 2>&1 \
            || $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$CHAOS_SERVERS" = private ]; then
    say "starting a private PostgreSQL cluster (chaos, port 5433) and RabbitMQ node (chaos@localhost, 5673)"
    $SUDO pg_dropcluster --stop "$PG_VERSION" chaos >/dev/null 2>&1 || true
    $SUDO pg_createcluster "$PG_VERSION" chaos -p 5433 -o max_connections=300 --start \
        -- --auth-host=trust --auth-local=trust >/dev/null
    PRIVATE_RABBIT_DIR="$(mktemp -d -t chaos-rabbitmq.XXXXXX)"
    printf 'listeners.tcp.local = 127.0.0.1:5673\nmanagement.tcp.port = 15673\nmanagement.tcp.ip = 127.0.0.1\n' \
        >"$PRIVATE_RABBIT_DIR/rabbitmq.conf"
    # The server runs as the rabbitmq user, which must own its directory.
    $SUDO chown -R rabbitmq:rabbitmq "$PRIVATE_RABBIT_DIR" 2>/dev/null || true
    $SUDO env RABBITMQ_NODENAME=chaos@localhost RABBITMQ_CONFIG_FILE="$PRIVATE_RABBIT_DIR/rabbitmq.conf" \
        RABBITMQ_MNESIA_BASE="$PRIVATE_RABBIT_DIR/mnesia" RABBITMQ_LOG_BASE="$PRIVATE_RABBIT_DIR/log" \
        RABBITMQ_PID_FILE="$PRIVATE_RABBIT_DIR/pid" RABBITMQ_DIST_PORT=25673 rabbitmq-server -detached
    for _ in $(seq 1 60); do
        curl -fsS -o /dev/null -u guest:guest http://127.0.0.1:15673/api/overview 2>/dev/null && break
        sleep 1
    done
    export CHAOS_PG_HOST=127.0.0.1:5433 CHAOS_PG_CLUSTER="$PG_VERSION/chaos" \
        CHAOS_RABBITMQ_NODE=chaos@localhost CHAOS_AMQP_HOST=127.0.0.1:5673 \
        CHAOS_RABBITMQ_MANAGEMENT=http://127.0.0.1:15673
fi

label="$(git rev-parse --short HEAD 2>/dev/null || echo run)"
{
    echo "# $(date -u +%FT%TZ) $label ORDERS=$ORDERS CONCURRENCY=$CONCURRENCY RATE=$RATE PROFILE=$PROFILE servers=$CHAOS_SERVERS"
    echo "# nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
} | tee "$OUT/result.txt"
"target/$PROFILE/loadgen" chaos --orders "$ORDERS" --concurrency "$CONCURRENCY" --rate "$RATE" \
    --label "$label" 2>&1 | tee -a "$OUT/result.txt"
say "results saved in $OUT/result.txt"
