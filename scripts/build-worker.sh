#!/usr/bin/env bash
# Builds the Worker into build/ (entry.mjs, index.js and index_bg.wasm) with the pinned, locally
# installed tools. entry.mjs is the module the runtime loads (see src/entry.mjs for why).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh
"$WORKER_BUILD" --release
node scripts/strip-names.mjs build/index_bg.wasm
cp src/entry.mjs build/entry.mjs
