#!/usr/bin/env bash
# The waiting replay check of two builds, compared: runs `BENCH_REPLAY_ONLY=1 scripts/bench.sh` (the
# two fresh-click-id sections, each against its own interleaved bare Worker) in tree A, then tree B,
# RUNS times (A B A B ...), so drift on a shared machine hits both alike, and prints for each section
# every run's throughput ratio and workerd CPU per request, then each tree's median over its runs.
#   scripts/bench-replay-ab.sh TREE_A TREE_B
# Each tree must be built (target/release/clickgate, build/ by scripts/build-worker.sh) and have
# node_modules. RUNS (2), BENCH_SECONDS (10) and BENCH_CONNECTIONS (32) adjust it; a run's whole
# output is kept in $OUT (a temporary directory unless given).
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd)
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
for t in "$a" "$b"; do
  for f in target/release/clickgate build/index_bg.wasm scripts/bench.sh; do
    [ -e "$t/$f" ] || { echo "$t/$f is missing: build the tree first" >&2; exit 1; }
  done
done
for r in $(seq "${RUNS:-2}"); do
  for t in a b; do
    tree=$a
    [ "$t" = b ] && tree=$b
    echo "==> run $r, tree $t ($tree) [$(date -u +%H:%M:%S)]" >&2
    (cd "$tree" && BENCH_REPLAY_ONLY=1 scripts/bench.sh) >"$out/$t-$r.log" 2>&1 \
      || { echo "failed: see $out/$t-$r.log" >&2; exit 1; }
  done
done
# Each section of a log names its network in its heading (net-signed: before the redirect; net-one:
# the same with one replay object, where the tree has that section; net-after); each has a
# "throughput ratio ... median R" line and a "runtime CPU per request ... (…; BARE vs CLICKGATE µs)" one.
python3 - "$out" "${RUNS:-2}" "$a" "$b" <<'EOF'
import re, statistics as st, sys
out, runs, trees = sys.argv[1], int(sys.argv[2]), {"a": sys.argv[3], "b": sys.argv[4]}
sections = {"net-signed": "before_redirect", "net-one": "before_redirect, one replay object",
            "net-after": "after_redirect"}
rows = {}  # (network, tree) -> [(ratio, bare_us, clickgate_us)]
for t in trees:
    for r in range(1, runs + 1):
        # A section starts at its heading, which names its network: "(net-signed, ...".
        for part in re.split(r"\n  -- ", open(f"{out}/{t}-{r}.log").read())[1:]:
            net = re.match(r"[^(]*\((net-[a-z]+)", part)
            ratio = re.search(r"throughput ratio clickgate / bare: median ([\d.]+)", part)
            cpu = re.search(r"runtime CPU per request, bare / clickgate: median [\d.]+ \(.*; ([\d.]+) vs ([\d.]+) µs\)", part)
            if net and ratio and cpu and net.group(1) in sections:
                rows.setdefault((net.group(1), t), []).append(
                    (float(ratio.group(1)), float(cpu.group(1)), float(cpu.group(2))))
for t, path in trees.items():
    print(f"  tree {t}: {path}")
for s, name in sections.items():
    print(f"  -- {name} ({s})")
    for t in trees:
        xs = rows.get((s, t), [])
        if not xs:
            print(f"  {t}: no figures (see the logs in {out})")
            continue
        each = "  ".join(f"{x[0]:.2f} ({x[2]:.0f} vs {x[1]:.0f} µs)" for x in xs)
        print(f"  {t}: throughput ratio median {st.median(x[0] for x in xs):.2f}, workerd CPU per click "
              f"median {st.median(x[2] for x in xs):.0f} µs against the bare Worker's "
              f"{st.median(x[1] for x in xs):.0f}; runs: {each}")
print(f"  (each run's figures are the medians of its 3 interleaved rounds; logs in {out})")
EOF
