#!/usr/bin/env bash
# Benchmarks the whole system on this machine: release builds of the five services on a fresh
# database (`orders_bench`) and a fresh RabbitMQ vhost (`bench`), then `loadgen` places ORDERS
# orders (default 2000) with CONCURRENCY clients (default 64) — or, with RATE set, offers RATE
# orders a second for DURATION seconds (open loop) — and reports throughput, latency, the
# per-order profile (commits, statements, messages, CPU by service), a chart
# (target/bench/timeline.svg) and the ratio to a pgbench reference run first.
# Everything it starts or creates is stopped and dropped on exit. See docs/benchmarks.md.
#
# Settings: ORDERS, CONCURRENCY, RATE, DURATION (default 60), BENCH_PROFILE (release | debug |
# profiling; default release), PGBENCH_SECONDS (default 20; 0 skips the reference),
# BENCH_PG_RESTART (default 1: restart PostgreSQL once to load pg_stat_statements when it is not
# loaded; 0 never restarts, and the profile then lacks statements per service), BENCH_PERF (a
# directory: record every CPU with `perf` into it while the load runs, see scripts/profile.sh),
# BENCH_PG_PORT (default 5432: the PostgreSQL server on 127.0.0.1 to bench against, e.g. a private
# cluster with pg_stat_statements preloaded, so the shared server is neither restarted nor disturbed).
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${ORDERS:-2000}"
CONCURRENCY="${CONCURRENCY:-64}"
RATE="${RATE:-}"
DURATION="${DURATION:-60}"
BENCH_PROFILE="${BENCH_PROFILE:-release}"
PGBENCH_SECONDS="${PGBENCH_SECONDS:-20}"
BENCH_PG_RESTART="${BENCH_PG_RESTART:-1}"
BENCH_PERF="${BENCH_PERF:-}"
PG_PORT="${BENCH_PG_PORT:-5432}"
DB_NAME=orders_bench
VHOST=bench
MANAGEMENT=http://127.0.0.1:15672
OUT=target/bench
. scripts/common.sh   # as_root (restarting PostgreSQL); `say` is redefined just below
say() { printf '\033[1;35m[bench]\033[0m %s\n' "$*"; }
psql_admin() { psql -h 127.0.0.1 -p "$PG_PORT" -U "${PGSUPERUSER:-postgres}" -v ON_ERROR_STOP=1 -q "$@"; }
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

case "$BENCH_PROFILE" in
    release | profiling) BIN="target/$BENCH_PROFILE" ;;
    debug) BIN=target/debug ;;
    *) echo "BENCH_PROFILE must be release, debug or profiling, not '$BENCH_PROFILE'" >&2; exit 1 ;;
esac
say "building $BENCH_PROFILE binaries (several minutes the first time)"
cargo build --profile "$([ "$BENCH_PROFILE" = debug ] && echo dev || echo "$BENCH_PROFILE")" \
    --bin order-api --bin inventory --bin payment --bin notifier --bin webhook-dispatcher --bin loadgen

for entry in "${SERVICES[@]}"; do
    read -r svc _ port <<<"$entry"
    if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
        echo "port $port (for $svc) is already in use; stop whatever listens there first" >&2
        exit 1
    fi
done

# pg_stat_statements gives statements, commits and WAL per service; it must be preloaded, which
# takes a restart of the cluster serving port 5432 (left loaded afterwards: it costs little).
pg_stat_statements_loaded() {
    [[ ",$(psql_admin -d postgres -Atc 'SHOW shared_preload_libraries' | tr -d ' ')," == *,pg_stat_statements,* ]]
}
if ! pg_stat_statements_loaded; then
    if [ "$BENCH_PG_RESTART" = 1 ]; then
        read -r pg_version pg_cluster < <(pg_lsclusters --no-header | awk -v port="$PG_PORT" '$3 == port {print $1, $2; exit}')
        [ -n "${pg_cluster:-}" ] || { echo "no PostgreSQL cluster on port $PG_PORT in pg_lsclusters" >&2; exit 1; }
        say "loading pg_stat_statements: restarting PostgreSQL $pg_version/$pg_cluster (BENCH_PG_RESTART=0 skips this)"
        current="$(psql_admin -d postgres -Atc 'SHOW shared_preload_libraries' | tr -d ' ')"
        psql_admin -d postgres -c "ALTER SYSTEM SET shared_preload_libraries = '${current:+$current,}pg_stat_statements'"
        as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_cluster" restart
        for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.5; done
        pg_stat_statements_loaded || { echo "pg_stat_statements still not loaded after the restart" >&2; exit 1; }
    else
        say "pg_stat_statements not loaded: statements per order from pg_stat_database only (BENCH_PG_RESTART=0)"
    fi
fi

# The reference: PostgreSQL's own rate for the smallest honest order (one conditional stock
# UPDATE and one INSERT per transaction), 8 clients, prepared statements, on a scratch database.
PGBENCH_DB=orders_bench_pgbench
PGBENCH_TPS=""
if [ "$PGBENCH_SECONDS" -gt 0 ]; then
    say "pgbench reference: $PGBENCH_SECONDS s, 8 clients, one stock UPDATE + one INSERT per transaction"
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$PGBENCH_DB\" WITH (FORCE)" >/dev/null
    psql_admin -d postgres -c "CREATE DATABASE \"$PGBENCH_DB\"" >/dev/null
    psql_admin -d "$PGBENCH_DB" >/dev/null <<'SQL'
CREATE TABLE stock (product_id int PRIMARY KEY, available int NOT NULL CHECK (available >= 0));
INSERT INTO stock SELECT g, 1000000000 FROM generate_series(1, 1000) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, product_id int NOT NULL, quantity int NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now());
SQL
    pgbench_script="$(mktemp -t bench-pgbench.XXXXXX.sql)"
    cat >"$pgbench_script" <<'SQL'
\set product random(1, 1000)
BEGIN;
UPDATE stock SET available = available - 1 WHERE product_id = :product AND available >= 1;
INSERT INTO orders (product_id, quantity) VALUES (:product, 1);
END;
SQL
    pgbench_out="$(pgbench -h 127.0.0.1 -p "$PG_PORT" -U "${PGSUPERUSER:-postgres}" -n -M prepared -c 8 -j 2 \
        -T "$PGBENCH_SECONDS" -f "$pgbench_script" "$PGBENCH_DB" 2>&1)" || { echo "$pgbench_out" >&2; exit 1; }
    rm -f "$pgbench_script"
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$PGBENCH_DB\" WITH (FORCE)" >/dev/null
    PGBENCH_TPS="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$pgbench_out" | head -n 1)"
    say "pgbench: $PGBENCH_TPS tps"
fi

PIDS=()
PERF_PIDS=()
MAIL_DIR_TMP=""
stop_perf() {
    for pid in "${PERF_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${PERF_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PERF_PIDS=()
}
cleanup() {
    local status=$?
    set +e
    stop_perf
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
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$PGBENCH_DB\" WITH (FORCE)" >/dev/null 2>&1
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
        DATABASE_URL="postgres://$role@127.0.0.1:$PG_PORT/$DB_NAME" \
        AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$VHOST" \
        RUST_LOG=warn \
        LOG_FORMAT=pretty \
        SMTP_URL= \
        MAIL_DIR="$MAIL_DIR_TMP" \
        "${BENCH_SETTINGS[@]}" \
        "$BIN/$svc" >"$OUT/$svc.log" 2>&1 &
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

# One system-wide recording (every CPU, every process: PostgreSQL and RabbitMQ too), split by
# pid afterwards. `perf record -p` is not used: it busy-loops once a recorded thread exits
# (tokio's idle blocking threads do), eating a core.
if [ -n "$BENCH_PERF" ]; then
    mkdir -p "$BENCH_PERF"
    : >"$BENCH_PERF/pids"
    i=0
    for entry in "${SERVICES[@]}"; do
        read -r svc _ _ <<<"$entry"
        echo "$svc ${PIDS[$i]}" >>"$BENCH_PERF/pids"
        i=$((i + 1))
    done
    perf record -a -e cpu-clock -F "${PERF_FREQ:-99}" --call-graph dwarf,8192 \
        -o "$BENCH_PERF/perf.data" >"$BENCH_PERF/perf.log" 2>&1 &
    PERF_PIDS+=("$!")
    say "recording every CPU with perf into $BENCH_PERF/perf.data"
fi

# RabbitMQ's CPU is reported too when its VM can be found (read-only look-up of its pid).
if beam="$(pgrep -o -x beam.smp 2>/dev/null)"; then PID_LIST="$PID_LIST,rabbitmq=$beam"; fi

label="$(git rev-parse --short HEAD 2>/dev/null || echo run)"
{
    if [ -n "$RATE" ]; then load="RATE=$RATE DURATION=$DURATION"; else load="ORDERS=$ORDERS CONCURRENCY=$CONCURRENCY"; fi
    echo "# $(date -u +%FT%TZ) $label $load BENCH_PROFILE=$BENCH_PROFILE"
    echo "# nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    free -h | sed 's/^/# /'
    echo "# load average before the run: $(cut -d" " -f1-3 /proc/loadavg)"
} | tee "$OUT/result.txt"
say "running loadgen"
# Then the invariants every system test ends with (crates/invariants): no dead letters, outboxes
# drained, every order's stock, money and invoice settled; a broken one fails the run.
LOAD=(--orders "$ORDERS" --concurrency "$CONCURRENCY")
[ -n "$RATE" ] && LOAD=(--rate "$RATE" --duration "$DURATION")
[ -n "$PGBENCH_TPS" ] && LOAD+=(--pgbench-tps "$PGBENCH_TPS")
ROLES=""
for entry in "${SERVICES[@]}"; do read -r svc role _ <<<"$entry"; ROLES="${ROLES:+$ROLES,}$svc=$role"; done
"$BIN/loadgen" --gateway http://127.0.0.1:8080 "${LOAD[@]}" \
    --pids "$PID_LIST" --label "$label" --out-dir "$OUT" --profile-vhost "$VHOST" --db-roles "$ROLES" \
    --invariants-database-url "postgres://${PGSUPERUSER:-postgres}@127.0.0.1:$PG_PORT/$DB_NAME" \
    --invariants-amqp-url "amqp://guest:guest@127.0.0.1:5672/$VHOST" \
    --invariants-management-url "$MANAGEMENT" | tee -a "$OUT/result.txt"
stop_perf
say "results saved in $OUT/result.txt, the chart in $OUT/timeline.svg, the profile in $OUT/profile.md"
