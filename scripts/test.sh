#!/usr/bin/env bash
# Runs the whole suite. Tests that stop the shared RabbitMQ run in a second pass, alone, so no
# other test sees the outage.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "[test] installing cargo-nextest"
    cargo install cargo-nextest --locked
fi
bash scripts/clean-test-data.sh
# Tests that run the real binaries (drain, CLI) find them in target/debug.
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast -E 'not test(/broker_outage/)'
cargo nextest run --workspace --no-fail-fast -E 'test(/broker_outage/)'
