#!/usr/bin/env bash
# `make test`, after the Worker build: prints the Worker's size and fails when build/index_bg.wasm,
# gzipped, is over WORKER_GZIP_BUDGET (scripts/versions.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh
raw=$(stat -c %s build/index_bg.wasm)
gz=$(gzip -9 -c build/index_bg.wasm | wc -c)
echo "==> Worker size"
printf '  index_bg.wasm %d bytes, gzipped %d bytes (budget: %d bytes gzipped)\n' "$raw" "$gz" "$WORKER_GZIP_BUDGET"
if [ "$gz" -gt "$WORKER_GZIP_BUDGET" ]; then
  echo "clickgate: the Worker is $((gz - WORKER_GZIP_BUDGET)) bytes over its gzipped budget" >&2
  exit 1
fi
