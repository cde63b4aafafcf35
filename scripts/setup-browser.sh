#!/usr/bin/env bash
# Chromium, for the end-to-end test that opens the report page in a real browser: only the
# end-to-end tests need it, so `make dev` and `make bench` never install a browser.
set -euo pipefail

step() { printf '==> %s\n' "$*"; }

if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing chromium (Debian package, for the report page test; one-time, a few minutes)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "clickgate: the report page test needs Chromium: sudo apt-get install chromium (or set CHROMIUM=/path/to/it)" >&2
    exit 1
  fi
fi
