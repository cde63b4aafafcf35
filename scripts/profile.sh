#!/usr/bin/env bash
# `make profile`: where a click's runtime CPU goes, beside the bare redirect Worker's. Each Worker is
# loaded with wrk while `perf` samples its workerd process; the samples are divided by the requests
# served, so the table reads in µs of workerd CPU per request, by kind of work:
#   wasm+JS    clickgate's own code, JIT-compiled (perf cannot name it, so it is one row)
#   runtime    workerd's own work: API objects, strings, promises, the HTTP server
#   gc         V8's collector and handles; malloc: the allocator; kernel: syscalls, socket wakeups
# Numbers are printed, never asserted. Needs perf (Debian: linux-perf) and permission to use it.
# PROFILE_SECONDS (8) and BENCH_CONNECTIONS (32) adjust it; PROFILE_REPLAY=net-signed (the click waits
# for its id's check) or net-after (checked after the redirect) profiles signed links of that network of
# benches/signed.json, each with a fresh click id, instead of the demo config's click (both Workers are
# sent the same links by benches/fresh-ids.lua, as `make bench` does). PROFILE_BASE picks the baseline:
# bare (the default), bare-log (the bare Worker writing a log line of clickgate's size) or rust-log
# (the bare Rust Worker built as clickgate is, writing that line: what is left beside it is
# clickgate's own work, not the toolchain's).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh
SECONDS_SAMPLED=${PROFILE_SECONDS:-8}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
CLICK='c?offer_id=1001&aff_id=net-7&sub1=spring&source_id=feed-3'

command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

BASE=${PROFILE_BASE:-bare}
case "$BASE" in
  bare | bare-log) rust="" ;;
  rust-log) scripts/build-bare-rust-worker.sh >/dev/null; rust=rust ;;
  *) echo "PROFILE_BASE is bare, bare-log or rust-log, not '$BASE'" >&2; exit 2 ;;
esac

. scripts/serve-pair.sh
serve_pair $((SECONDS_SAMPLED * 4 + 60)) $rust
case "$BASE" in
  bare) base_url=$bare_url base_pid=$bare_pid ;;
  bare-log) base_url=$bare_logging_url base_pid=$bare_logging_pid ;;
  rust-log) base_url=$bare_rust_logging_url base_pid=$bare_rust_logging_pid ;;
esac

sample() { # name url pid -> $state/name.txt (perf's flat table) and $state/name.rps
  local pid wrk_pid
  pid=$3
  curl -s -o /dev/null "$2$CLICK"
  wrk -t1 -c"$CONNECTIONS" -d"$((SECONDS_SAMPLED + 3))s" ${PROFILE_REPLAY:+-s benches/fresh-ids.lua} "$2$CLICK" >"$state/$1.wrk" &
  wrk_pid=$!
  sleep 1
  perf record -q -F 999 -p "$pid" -o "$state/$1.data" -- sleep "$SECONDS_SAMPLED" 2>/dev/null
  wait "$wrk_pid"
  awk '/^Requests\/sec/ { print $2 }' "$state/$1.wrk" >"$state/$1.rps"
  perf report -q -i "$state/$1.data" --no-children -g none --sort dso,sym -F sample,dso,sym --stdio \
    2>/dev/null >"$state/$1.txt"
}

what="the demo config"
if [ -n "${PROFILE_REPLAY:-}" ]; then
  net=$PROFILE_REPLAY
  what="signed links of $net (benches/signed.json), each with a fresh click id"
  target/release/clickgate config push benches/signed.json --local --persist-to "$state" >/dev/null 2>&1
  seq -f "$net-%.0f" 1 $((SECONDS_SAMPLED * 2 * 20000)) >"$state/ids.txt"
  target/release/clickgate sign --config benches/signed.json --network "$net" \
    --url "${clickgate_url}c?offer_id=1001&aff_id=$net&sub1=spring" --expires-in 3600 \
    --click-ids "$state/ids.txt" 2>/dev/null | sed -E 's#^https?://[^/]+##' >"$state/links.txt"
  export LINKS="$state/links.txt"
  CLICK=$(head -n 1 "$LINKS")
  CLICK=${CLICK#/}
  sleep 2.5 # the isolate re-reads the config a second after the push (CONFIG_REFRESH_SECONDS=1)
  curl -s -o /dev/null "${clickgate_url}healthz"
  sleep 1
fi
echo "==> sampling workerd under wrk, ${SECONDS_SAMPLED}s each, ${CONNECTIONS} connections, $what"
sample clickgate "$clickgate_url" "$clickgate_pid"
sample bare "$base_url" "$base_pid"

python3 - "$state" "$SECONDS_SAMPLED" "$BASE" <<'EOF'
import re, sys
state, seconds, base = sys.argv[1], float(sys.argv[2]), sys.argv[3]

def kind(dso, sym):
    if dso.startswith("[JIT]"): return "wasm+JS"
    if dso.startswith("[kernel"): return "kernel"
    if "malloc" in sym.lower(): return "malloc"
    if re.search(r"Scaveng|Heap|cppgc|GlobalHandles|Trac|Wrappable|GlobalizeTraced", sym): return "gc"
    return "runtime"

def load(name):
    rps = float(open(f"{state}/{name}.rps").read())
    per_kind, per_sym = {}, {}
    for line in open(f"{state}/{name}.txt"):
        m = re.match(r"\s*(\d+)\s+(\[JIT\] tid \d+|\S+)\s+\[.\]\s+(.*)", line)
        if m:
            k = kind(m.group(2), m.group(3))
            # perf samples at 999 Hz: a sample is about 1 ms of CPU.
            us = int(m.group(1)) / 999 / (rps * seconds) * 1e6
            per_kind[k] = per_kind.get(k, 0) + us
            sym = "(JIT code)" if k == "wasm+JS" else m.group(3)[:90]
            per_sym[sym] = per_sym.get(sym, 0) + us
    return rps, per_kind, per_sym

c_rps, c, c_sym = load("clickgate")
b_rps, b, b_sym = load("bare")
print(f"  {'µs of workerd CPU per request':32} {'clickgate':>10} {base:>10} {'difference':>11}")
for k in sorted(set(c) | set(b), key=lambda k: -(c.get(k, 0) - b.get(k, 0))):
    print(f"  {k:32} {c.get(k, 0):10.1f} {b.get(k, 0):10.1f} {c.get(k, 0) - b.get(k, 0):+11.1f}")
print(f"  {'total':32} {sum(c.values()):10.1f} {sum(b.values()):10.1f} {sum(c.values()) - sum(b.values()):+11.1f}")
print(f"  the functions clickgate's requests spend most on beyond the {base} Worker's (µs per request):")
top = sorted(set(c_sym) | set(b_sym), key=lambda k: -(c_sym.get(k, 0) - b_sym.get(k, 0)))[:12]
for sym in top:
    print(f"    {c_sym.get(sym, 0) - b_sym.get(sym, 0):+6.1f}  {sym}")
print(f"  requests/s under the profiler: clickgate {c_rps:.0f}, {base} {b_rps:.0f} (ratio {c_rps / b_rps:.2f})")
EOF
