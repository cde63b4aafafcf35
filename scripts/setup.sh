#!/usr/bin/env bash
# Installs what building and testing clickgate needs, from the package registries only, and skips
# whatever is already installed at the pinned version. Safe to run again and again.
#
# Tools are kept per version under $CLICKGATE_TOOLS (default ~/.cache/clickgate/tools), so a second
# clone on the same machine reuses them and a version bump installs beside the old one.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh

step() { printf '==> %s\n' "$*"; }

# The Rust side: the wasm target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# worker-build, pinned. It would download wasm-bindgen, wasm-opt and esbuild from GitHub; the
# variables set by scripts/versions.sh point it at the copies installed here instead.
if [ ! -x "$WORKER_BUILD" ]; then
  step "installing worker-build $WORKER_BUILD_VERSION (one-time, a few minutes)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --root "$TOOLS/worker-build-$WORKER_BUILD_VERSION"
fi

# wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock: the CLI and the library must agree.
if [ ! -x "$WASM_BINDGEN_BIN" ]; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (one-time, a few minutes)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked --root "$TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION"
fi

# Node: wrangler $(pinned in package.json) needs Node 20.3 or newer.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "clickgate: Node.js 20.3 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  echo "           on Debian: apt-get install nodejs npm" >&2
  exit 1
fi

# npm packages (wrangler, and with it workerd, miniflare and esbuild), exactly as locked.
if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing npm packages (wrangler $(node -p 'require("./package.json").devDependencies.wrangler'))"
  npm ci --no-audit --no-fund
fi
