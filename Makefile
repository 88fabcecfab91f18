# The two commands: `make run` and `make test`. Everything else is for contributors.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test bench profile chaos setup setup-test build lint lint-tools fmt clean-test-data

## Install/start PostgreSQL and RabbitMQ if needed, build, run all five services (Ctrl-C stops).
run:
	@bash scripts/run.sh

## The whole test suite against real PostgreSQL and RabbitMQ.
test: setup-test
	@bash scripts/test.sh

## End-to-end throughput and latency with release builds; see docs/benchmarks.md.
bench:
	@bash scripts/bench.sh

## Flame graphs of the two hottest services under the bench load (perf + inferno).
profile:
	@bash scripts/profile.sh

## Crash test: orders from retrying clients while services are killed and PostgreSQL and
## RabbitMQ restart; then every order is checked. See docs/benchmarks.md.
chaos:
	@bash scripts/chaos.sh

## PostgreSQL and RabbitMQ (what `make run` needs; it runs this itself).
setup:
	@bash scripts/setup-deps.sh

## Also what only the tests need: Chromium and var/venv (Python test tools).
setup-test: setup
	@bash scripts/setup-test-deps.sh

build:
	$(CARGO) build --workspace

## What CI checks besides the tests: formatting, clippy (warnings are errors) and cargo-deny
## (licenses, banned crates, sources; not advisories: README, "Contributor notes").
lint: lint-tools
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) deny check licenses bans sources

## cargo-deny from crates.io when it is missing (a few minutes, once).
lint-tools:
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deny@0.20.2

fmt:
	$(CARGO) fmt --all

## Drop databases and vhosts that interrupted test runs left behind.
clean-test-data:
	@bash scripts/clean-test-data.sh
