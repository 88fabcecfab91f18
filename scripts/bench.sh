#!/usr/bin/env bash
# Benchmarks the whole system on this machine: release builds of the five services on a fresh
# database (`orders_bench`) and a fresh RabbitMQ vhost (`bench`), then `loadgen` places ORDERS
# orders (default 2000) with CONCURRENCY clients (default 64) and reports throughput, latency and
# CPU per order. Everything it starts or creates is stopped and dropped on exit.
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${ORDERS:-2000}"
CONCURRENCY="${CONCURRENCY:-64}"
DB_NAME=orders_bench
VHOST=bench
MANAGEMENT=http://127.0.0.1:15672
OUT=target/bench
say() { printf '\033[1;35m[bench]\033[0m %s\n' "$*"; }
psql_admin() { psql -h 127.0.0.1 -U "${PGSUPERUSER:-postgres}" -v ON_ERROR_STOP=1 -q "$@"; }
rabbit() { curl -fsS -u guest:guest -H 'content-type: application/json' "$@"; }

# service name, database role, port
SERVICES=(
    "order-api order_api 8080"
    "inventory inventory 8081"
    "payment payment 8082"
    "notifier notifier 8083"
    "webhook-dispatcher webhooks 8084"
)

scripts/setup-deps.sh

say "building release binaries (several minutes the first time)"
cargo build --release --bin order-api --bin inventory --bin payment --bin notifier --bin webhook-dispatcher --bin loadgen

for entry in "${SERVICES[@]}"; do
    read -r svc _ port <<<"$entry"
    if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
        echo "port $port (for $svc) is already in use; stop whatever listens there first" >&2
        exit 1
    fi
done

PIDS=()
MAIL_DIR_TMP=""
cleanup() {
    local status=$?
    set +e
    if [ "${#PIDS[@]}" -gt 0 ]; then
        say "stopping the services"
        for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
        for pid in "${PIDS[@]}"; do
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        done
    fi
    say "dropping database $DB_NAME and vhost $VHOST"
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1
    curl -s -o /dev/null -u guest:guest -X DELETE "$MANAGEMENT/api/vhosts/$VHOST"
    [ -n "$MAIL_DIR_TMP" ] && rm -rf "$MAIL_DIR_TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "fresh database $DB_NAME"
psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null
psql_admin -d postgres -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null
psql_admin -d "$DB_NAME" -f deploy/postgres/schemas.sql >/dev/null

say "fresh RabbitMQ vhost $VHOST"
curl -s -o /dev/null -u guest:guest -X DELETE "$MANAGEMENT/api/vhosts/$VHOST"
rabbit -X PUT "$MANAGEMENT/api/vhosts/$VHOST" -d '{}' >/dev/null
rabbit -X PUT "$MANAGEMENT/api/permissions/$VHOST/guest" -d '{"configure":".*","write":".*","read":".*"}' >/dev/null

mkdir -p "$OUT"
MAIL_DIR_TMP="$(mktemp -d -t bench-mail.XXXXXX)"
PID_LIST=""
# One admin for the load generator, a throwaway token key, and no per-client rate or open-order
# limit (all the load comes from one address and one account).
export BENCH_ADMIN_EMAIL="bench-admin@example.com"
BENCH_ADMIN_PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export BENCH_ADMIN_PASSWORD
BENCH_SETTINGS=(JWT_KEY_DIR="$MAIL_DIR_TMP/jwt"
    BOOTSTRAP_ADMIN_EMAIL="$BENCH_ADMIN_EMAIL" BOOTSTRAP_ADMIN_PASSWORD="$BENCH_ADMIN_PASSWORD"
    RATE_LIMIT_PER_SECOND=0 MAX_OPEN_ORDERS_PER_CLIENT=0
    # The simulated provider (payment refuses it unless told this is not production).
    PAYMENT_SIMULATOR_ENABLED=true)
for entry in "${SERVICES[@]}"; do
    read -r svc role port <<<"$entry"
    say "starting $svc (log: $OUT/$svc.log)"
    env -u CONFIG_FILE \
        DATABASE_URL="postgres://$role@127.0.0.1:5432/$DB_NAME" \
        AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$VHOST" \
        RUST_LOG=warn \
        LOG_FORMAT=pretty \
        SMTP_URL= \
        MAIL_DIR="$MAIL_DIR_TMP" \
        "${BENCH_SETTINGS[@]}" \
        "target/release/$svc" >"$OUT/$svc.log" 2>&1 &
    PIDS+=("$!")
    PID_LIST="${PID_LIST:+$PID_LIST,}$svc=$!"
done

i=0
for entry in "${SERVICES[@]}"; do
    read -r svc _ port <<<"$entry"
    pid="${PIDS[$i]}"
    i=$((i + 1))
    ready=""
    for _ in $(seq 1 120); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/health/ready" 2>/dev/null; then ready=1; break; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.5
    done
    if [ -z "$ready" ]; then
        echo "$svc did not become ready; last lines of $OUT/$svc.log:" >&2
        tail -n 30 "$OUT/$svc.log" >&2
        exit 1
    fi
done
say "all five services ready"

# RabbitMQ's CPU is reported too when its VM can be found (read-only look-up of its pid).
if beam="$(pgrep -o -x beam.smp 2>/dev/null)"; then PID_LIST="$PID_LIST,rabbitmq=$beam"; fi

label="$(git rev-parse --short HEAD 2>/dev/null || echo run)"
{
    echo "# $(date -u +%FT%TZ) $label ORDERS=$ORDERS CONCURRENCY=$CONCURRENCY"
    echo "# nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    free -h | sed 's/^/# /'
    echo "# load average before the run: $(cut -d" " -f1-3 /proc/loadavg)"
} | tee "$OUT/result.txt"
say "running loadgen"
# Then the invariants every system test ends with (crates/invariants): no dead letters, outboxes
# drained, every order's stock, money and invoice settled; a broken one fails the run.
target/release/loadgen --gateway http://127.0.0.1:8080 --orders "$ORDERS" --concurrency "$CONCURRENCY" \
    --pids "$PID_LIST" --label "$label" \
    --invariants-database-url "postgres://${PGSUPERUSER:-postgres}@127.0.0.1:5432/$DB_NAME" \
    --invariants-amqp-url "amqp://guest:guest@127.0.0.1:5672/$VHOST" \
    --invariants-management-url "$MANAGEMENT" | tee -a "$OUT/result.txt"
say "results saved in $OUT/result.txt"
