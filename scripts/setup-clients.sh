#!/usr/bin/env bash
# The real clients the `spoof` filter's end-to-end test (tests/e2e/spoof.rs) sends through the
# Worker: curl, Python's requests and httpx, Node's fetch, Go's net/http, curl_cffi impersonating
# browsers, and Firefox beside Chromium. Only the end-to-end tests need them, so `make dev` and
# `make bench` install none of them.
#
# curl, requests, httpx and node must be there (the test fails without them). Go, curl_cffi and
# Firefox are optional: where one cannot be installed the test prints that it skipped it.
# The Python packages go into a venv under $CLICKGATE_TOOLS, pinned in scripts/versions.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh

step() { printf '==> %s\n' "$*"; }

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v firefox-esr >/dev/null || command -v firefox >/dev/null || missing+=(firefox-esr)
command -v go >/dev/null || missing+=(golang-go)
python_venv_ok() { python3 -c 'import venv, ensurepip' 2>/dev/null; }
python_venv_ok || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing ${missing[*]} (Debian packages, for the spoof filter's end-to-end test; one-time)"
    apt-get update -qq
    # One at a time: an optional package that will not install must not stop the others.
    for pkg in "${missing[@]}"; do
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null \
        || echo "clickgate: could not install $pkg" >&2
    done
  else
    echo "clickgate: the spoof test wants ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
  fi
fi
command -v curl >/dev/null || { echo "clickgate: the spoof test needs curl" >&2; exit 1; }

if [ "$(cat "$CLIENTS/.installed" 2>/dev/null)" != "$CLIENTS_PYTHON_PACKAGES" ]; then
  step "installing $CLIENTS_PYTHON_PACKAGES into $CLIENTS (one-time)"
  rm -rf "$CLIENTS"
  python3 -m venv "$CLIENTS"
  # shellcheck disable=SC2086 # the package list is a word list
  "$CLIENTS/bin/pip" install --quiet $CLIENTS_PYTHON_PACKAGES
  echo "$CLIENTS_PYTHON_PACKAGES" >"$CLIENTS/.installed"
fi
# curl_cffi ships curl-impersonate as a binary wheel, which not every platform has: tried again
# on each run until it is there.
frozen=$("$CLIENTS/bin/pip" freeze 2>/dev/null || true)
if ! grep -qixF "$CLIENTS_IMPERSONATE_PACKAGE" <<<"$frozen"; then
  step "installing $CLIENTS_IMPERSONATE_PACKAGE into $CLIENTS"
  "$CLIENTS/bin/pip" install --quiet "$CLIENTS_IMPERSONATE_PACKAGE" \
    || echo "clickgate: $CLIENTS_IMPERSONATE_PACKAGE did not install; the spoof test will skip it" >&2
fi

# Go's client, built once (Go's own standard library, nothing fetched).
if command -v go >/dev/null && { [ ! -x "$CLIENTS/bin/go-get" ] || [ tests/e2e/clients/get.go -nt "$CLIENTS/bin/go-get" ]; }; then
  step "building the Go client"
  mkdir -p "$CLIENTS/bin"
  GOCACHE="$CLIENTS/go-cache" GO111MODULE=off go build -o "$CLIENTS/bin/go-get" tests/e2e/clients/get.go
fi
