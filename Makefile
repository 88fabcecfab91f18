# The two commands: `make run` and `make test`. Everything else is for contributors.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test bench setup build lint fmt clean-test-data

## Install/start PostgreSQL and RabbitMQ if needed, build, run all five services (Ctrl-C stops).
run:
	@bash scripts/run.sh

## The whole test suite against real PostgreSQL and RabbitMQ.
test: setup
	@bash scripts/test.sh

## End-to-end throughput and latency with release builds; see docs/benchmarks.md.
bench:
	@bash scripts/bench.sh

setup:
	@bash scripts/setup-deps.sh

build:
	$(CARGO) build --workspace

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Drop databases and vhosts that interrupted test runs left behind.
clean-test-data:
	@bash scripts/clean-test-data.sh
