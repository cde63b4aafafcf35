#!/usr/bin/env bash
# Builds the Worker into build/ (index.js + index_bg.wasm) with the pinned, locally installed tools.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh
"$WORKER_BUILD" --release
node scripts/strip-names.mjs build/index_bg.wasm
