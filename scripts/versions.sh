# Pinned tool versions and where they live, and the Worker's size budget; sourced by the other scripts.
WORKER_BUILD_VERSION=0.8.7
# Read from Cargo.lock, so the CLI always matches the library that was linked.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
TOOLS=${CLICKGATE_TOOLS:-$HOME/.cache/clickgate/tools}
WORKER_BUILD="$TOOLS/worker-build-$WORKER_BUILD_VERSION/bin/worker-build"
export WASM_BINDGEN_BIN="$TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION/bin/wasm-bindgen"
export WASM_BINDGEN_TEST_RUNNER="$TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION/bin/wasm-bindgen-test-runner"
export ESBUILD_BIN="$PWD/node_modules/esbuild/bin/esbuild"
export PATH="$TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION/bin:$PWD/node_modules/.bin:$PATH"
# The Worker's size budget: build/index_bg.wasm, gzip -9, in bytes (330 KiB). Every isolate downloads
# and compiles it before its first click, so `make test` fails past it (scripts/size-check.sh) and
# `make bench` prints the size against it. It was 300 KiB until link profiles, forwarded
# postbacks, the spoof filter, the core's postback and admin conductors, the statistical flood
# bound and the isolate-wide retry of stranded counts took the Worker from 291 to 321 KiB; the
# cold-start bench (`make bench`) is what says whether that growth costs a first click its budget.
WORKER_GZIP_BUDGET=337920
# The HTTP clients the spoof filter's end-to-end test sends through the Worker (scripts/setup-clients.sh),
# pinned: a new release may send other headers, and the test prints what each one got.
CLIENTS_PYTHON_PACKAGES="requests==2.34.2 httpx==0.28.1"
CLIENTS_IMPERSONATE_PACKAGE="curl_cffi==0.17.0"
CLIENTS="$TOOLS/clients-1"
