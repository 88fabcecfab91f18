#!/usr/bin/env bash
# `make run`: prepares PostgreSQL and RabbitMQ, builds, and runs the five services in the
# foreground with prefixed logs until Ctrl-C. PROFILE=release for optimised binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
PROFILE="${PROFILE:-debug}"
SERVICES=(order-api inventory payment notifier webhook-dispatcher)
bins=()
for service in "${SERVICES[@]}"; do bins+=(--bin "$service"); done
if [ "$PROFILE" = release ]; then cargo build --release "${bins[@]}"; else cargo build "${bins[@]}"; fi
export MAIL_DIR="${MAIL_DIR:-$PWD/var/mail}"
mkdir -p "$MAIL_DIR"

pids=()
stop() {
    trap - INT TERM EXIT
    echo "[run] stopping services (they drain in-flight work first)"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

colors=(32 33 35 36 34)
for i in "${!SERVICES[@]}"; do
    service="${SERVICES[$i]}"
    prefix=$(printf '\033[%sm%-18s\033[0m|' "${colors[$i]}" "$service")
    # Process substitution, not a pipe: `$!` is then the service itself, which the trap stops.
    "target/$PROFILE/$service" > >(sed -u "s/^/$prefix /") 2>&1 &
    pids+=($!)
done

for port in 8080 8081 8082 8083 8084; do
    for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 0.5; done
done
cat <<MSG

  Gateway (REST API)   http://127.0.0.1:8080/api/v1/orders
  Health / metrics     http://127.0.0.1:8080/health/ready   http://127.0.0.1:8080/metrics
  RabbitMQ UI          http://127.0.0.1:15672  (guest / guest)
  Emails (no SMTP_URL) $MAIL_DIR
  Ctrl-C stops everything.

MSG
wait
