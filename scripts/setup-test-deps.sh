#!/usr/bin/env bash
# What only the tests need, on top of scripts/setup-deps.sh (`make test` runs both; `make run`
# needs neither): Chromium, which renders the docs page in a headless browser, and var/venv, a
# project-local Python environment with the independent Standard Webhooks verifier the webhook
# tests check signatures with, and moto's S3 server for the product image tests. A virtual environment, not `pip install` into the system Python:
# Debian 12 and Ubuntu 23.04+ refuse that (PEP 668, "externally-managed-environment"), and the
# project should not change the machine's Python anyway. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

# --- Chromium ---------------------------------------------------------------------------
# Debian names the package `chromium`; Ubuntu `chromium-browser` (a snap wrapper there, which
# needs snapd). Whichever apt offers.
if [ "${SKIP_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1 \
    && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
    if apt_has chromium; then apt_install chromium
    elif apt_has chromium-browser; then apt_install chromium-browser
    else die "no Chromium package in apt here: install chromium or google-chrome (the docs page test runs it), or set SKIP_BROWSER=1 and skip that test"
    fi
fi

# --- var/venv: Python test tools ----------------------------------------------------------
VENV=var/venv
if ! "$VENV/bin/python" -c 'import standardwebhooks' >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        # Debian and Ubuntu ship venv's pip bootstrap separately.
        apt_install python3-venv
    fi
    say "creating $VENV with the Standard Webhooks verifier (standardwebhooks from PyPI)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check standardwebhooks
fi

# moto's S3 server: the product image tests run the object store against a real S3-compatible
# HTTP server (crates/system-tests/tests/it/product_images.rs starts `moto_server` on a free
# port). Pinned: its S3 behaviour is what the tests were checked against.
MOTO_VERSION=5.2.5
if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" >/dev/null 2>&1 \
    || [ ! -x "$VENV/bin/moto_server" ]; then
    say "installing moto[server] $MOTO_VERSION into $VENV (the S3 server the image tests use)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# --- diesel CLI ---------------------------------------------------------------------------
# The schema drift test (crates/system-tests/tests/it/schema_drift.rs) migrates a scratch
# database and compares `diesel print-schema` with each service's src/schema.rs. Only its
# PostgreSQL backend, which links libpq; cargo puts it in ~/.cargo/bin, beside cargo itself.
if ! command -v diesel >/dev/null 2>&1; then
    dpkg -s libpq-dev >/dev/null 2>&1 || apt_install libpq-dev
    say "installing diesel_cli from crates.io (a few minutes, once)"
    cargo install diesel_cli --version '~2.3' --no-default-features --features postgres --locked
fi

# --- PostgreSQL capacity ------------------------------------------------------------------
# Tests run side by side, five services with pools each: setup-deps.sh raises max_connections
# but cannot always restart PostgreSQL to apply it.
connections="$(psql -h 127.0.0.1 -U "${PGSUPERUSER:-postgres}" -d postgres -tAc 'SHOW max_connections')"
[ "$connections" -ge 300 ] \
    || die "PostgreSQL runs with max_connections = $connections; the tests need 300 (already set in postgresql.auto.conf): restart PostgreSQL, then run make test again"
say "test tools are ready"
