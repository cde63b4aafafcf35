#!/usr/bin/env bash
# Builds the bench's bare Rust Worker (benches/bare-rust-worker) the way scripts/build-worker.sh
# builds clickgate: the pinned worker-build and wasm-bindgen, the release profile, the names
# stripped, and an entry module that hands the runtime a plain handler as src/entry.mjs does. Two
# builds, each a Worker of its own that `make bench` serves:
#   target/bare-rust-worker/logging/  with the `log` feature: what benches/bare-logging-worker.js does
#   target/bare-rust-worker/plain/    without it: what benches/bare-worker.js does
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh
crate=benches/bare-rust-worker
out=target/bare-rust-worker
# The root's lock, so every crate (not only the ones pinned with `=`) is the version clickgate links.
cp Cargo.lock "$crate/Cargo.lock"
export CARGO_TARGET_DIR="$PWD/$out/cargo"
for mode in logging plain; do
  features=()
  [ "$mode" = logging ] && features=(--features log)
  rm -rf "${out:?}/$mode"
  (cd "$crate" && "$WORKER_BUILD" --release --out-dir "../../$out/$mode" . "${features[@]}")
  node scripts/strip-names.mjs "$out/$mode/index_bg.wasm"
  cp "$crate/entry.mjs" "$out/$mode/entry.mjs"
done
