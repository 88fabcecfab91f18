#!/usr/bin/env bash
# Flame graphs of the two hottest services under the bench load. Builds the services with the
# `profiling` cargo profile (release code with line tables), runs scripts/bench.sh while `perf
# record -a` samples every CPU (cpu-clock, DWARF call graphs), splits the samples by service pid,
# and renders the two services with the most samples, and PostgreSQL's backends, as
# target/bench/flame/<name>.svg with inferno.
# Installs linux-perf (apt) and inferno (cargo install) when missing. See docs/benchmarks.md.
#
# Settings: those of scripts/bench.sh (ORDERS, CONCURRENCY, RATE, ...; PGBENCH_SECONDS defaults
# to 0 here; BENCH_PROFILE=debug only to check the recipe quickly), PERF_FREQ (samples a second
# per service, default 199), FLAME_TOP (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
say() { printf '\033[1;35m[profile]\033[0m %s\n' "$*"; }

OUT=target/bench/flame
FLAME_TOP="${FLAME_TOP:-2}"

if ! command -v perf >/dev/null 2>&1; then
    apt_has linux-perf && apt_install linux-perf || apt_install linux-tools-generic
fi
# Hardware counters are often missing in VMs; the cpu-clock software event is what we sample.
perf stat -e instructions true >/dev/null 2>&1 || say "no hardware counters here: sampling cpu-clock"
# A system-wide recording (perf record -a) needs root or perf_event_paranoid <= 0.
if [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt 0 ] && [ "$(id -u)" != 0 ]; then
    die "perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid): run as root, or lower it to 0"
fi
if ! command -v inferno-flamegraph >/dev/null 2>&1; then
    say "installing inferno (cargo install inferno)"
    cargo install --locked inferno
fi

rm -rf "$OUT"
mkdir -p "$OUT"
BENCH_PROFILE="${BENCH_PROFILE:-profiling}" BENCH_PERF="$OUT" PGBENCH_SECONDS="${PGBENCH_SECONDS:-0}" bash scripts/bench.sh

# One pass over the recording, stacks rooted at "<command>-<pid>", then split: each service by
# its pid, PostgreSQL's backends by name. --no-inline and no debuginfod: with them perf script
# runs addr2line per address or waits on the network, minutes instead of seconds.
say "collapsing the stacks"
DEBUGINFOD_URLS='' perf script --no-inline -F comm,pid,tid,period,event,ip,sym,dso -i "$OUT/perf.data" 2>"$OUT/perf-script.log" \
    | inferno-collapse-perf --pid >"$OUT/all.folded"
while read -r svc pid; do
    grep -E "^[^;]*-$pid;" "$OUT/all.folded" >"$OUT/$svc.folded" || true
done <"$OUT/pids"
grep -E '^postgres-[0-9]+;' "$OUT/all.folded" >"$OUT/postgres.folded" || true
# A folded line ends in its sample count: a file's sum is the samples taken in those processes.
samples() { awk '{n += $NF} END {printf "%d", n}' "$1"; }
mapfile -t hottest < <(while read -r svc _; do
    printf '%s %s\n' "$(samples "$OUT/$svc.folded")" "$svc"
done <"$OUT/pids" | sort -rn | head -n "$FLAME_TOP")
for entry in "${hottest[@]}" "$(samples "$OUT/postgres.folded") postgres"; do
    read -r count svc <<<"$entry"
    inferno-flamegraph --title "$svc under the bench load ($count samples at ${PERF_FREQ:-99} Hz)" \
        <"$OUT/$svc.folded" >"$OUT/$svc.svg"
    say "$svc: $count samples -> $OUT/$svc.svg"
done
