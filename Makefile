# The two commands a user needs: `make dev` and `make test`. Each installs what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup browser clients worker size-check cli dev test test-core test-sets test-wasm test-e2e lint deploy-check bench profile

help:
	@echo "make dev    build the Worker, load the demo config into local KV, serve it on 127.0.0.1:8787"
	@echo "make test   run every test: core (native and wasm32), CLI, Worker size, end-to-end in workerd, deploy dry run"
	@echo "make bench  criterion benches of the core and the end-to-end throughput bench"
	@echo "make profile  workerd CPU per request, clickgate beside the bare Worker, by kind of work (needs perf)"

setup:
	@scripts/setup.sh

browser:
	@scripts/setup-browser.sh

clients:
	@scripts/setup-clients.sh

worker: setup
	@scripts/build-worker.sh

size-check: worker
	@scripts/size-check.sh

cli:
	@cargo build --quiet --release -p clickgate-cli

dev: worker cli
	@scripts/dev.sh

test: setup lint test-core test-sets test-wasm worker size-check cli test-e2e deploy-check

lint:
	@echo "==> cargo fmt --check and clippy"
	@cargo fmt --all -- --check
	@cargo clippy --quiet --workspace --all-targets -- -D warnings
	@source scripts/versions.sh && cargo clippy --quiet -p clickgate --target wasm32-unknown-unknown -- -D warnings

test-core:
	@echo "==> core and CLI tests (native)"
	@cargo test --quiet --workspace --exclude clickgate

# The built-in AS sets' lines against the pinned AS data (installed once; a few seconds after).
test-sets:
	@echo "==> built-in AS sets against their source"
	@python3 scripts/builtin-sets.py --check
	@python3 scripts/builtin-sets.py --verify --quiet

test-wasm:
	@echo "==> core tests on wasm32 (wasm-bindgen-test under node)"
	@source scripts/versions.sh && cargo test -p clickgate-core --target wasm32-unknown-unknown

test-e2e: browser clients
	@echo "==> end-to-end tests in workerd"
	@source scripts/versions.sh && cargo test --quiet -p clickgate --test e2e -- --test-threads=1

deploy-check: worker
	@echo "==> wrangler deploy --dry-run"
	@source scripts/versions.sh && wrangler deploy --dry-run --outdir target/deploy-dry-run >/dev/null && echo "deploy dry run: ok"

bench: worker cli
	@scripts/bench.sh

profile: worker cli
	@scripts/profile.sh
