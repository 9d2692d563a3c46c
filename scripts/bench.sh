#!/usr/bin/env bash
# Benchmarks Tributary against the PyTorch reference RealNVP, back to back, and reports ratios.
#
# Usage (from anywhere in the repository; a clean clone is enough):
#   scripts/bench.sh                          all configs (toy2d tab16 wide64) x threads (1 2)
#   CONFIGS=tab16 THREADS=1 scripts/bench.sh  a subset
#   QUICK=1 scripts/bench.sh                  shorter timing windows for the peer (smoke run)
#
# Environment:
#   CONFIGS      benchmark configurations, DESIGN.md §8      (default: "toy2d tab16 wide64")
#   THREADS      thread counts                               (default: "1 2")
#   QUICK=1      pass "--window-s 0.3 --windows 5" to the PyTorch peer (and the same windows
#                to `tributary bench` when it has --window-seconds/--windows)
#   BENCH_OUT    where results go                            (default: .build/bench)
#   PEERS_DIR    the peer harness (read-only)   (default: <repo>/../shared/bench/peers)
#   TRIBUTARY    use this tributary binary instead of building one with `swift build -c release`
#   PYTHON       Python interpreter for the peer and the report (default: python3)
#   BENCH_TIMEOUT  seconds allowed for each single run          (default: 600)
#
# For every (config, threads) the Tributary run and the PyTorch run happen one right after the
# other, so each ratio comes from the same state of a shared machine (PEERS.md: "compare by
# ratio in one run"). Results: BENCH_OUT/tributary-C-tT.json, BENCH_OUT/pytorch-C-tT.json,
# logs beside them, then scripts/bench_report.py prints a Markdown table and writes
# BENCH_OUT/report.json. Without an importable torch the peer is skipped and the report shows
# Tributary's figures alone. Exits non-zero if any run failed.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null || (cd "$script_dir/.." && pwd))
cd "$repo_root"

PY=${PYTHON:-python3}
CONFIGS=${CONFIGS:-toy2d tab16 wide64}
THREADS=${THREADS:-1 2}
PEERS_DIR=${PEERS_DIR:-$repo_root/../shared/bench/peers}
OUT=${BENCH_OUT:-.build/bench}
LIMIT=${BENCH_TIMEOUT:-600}
if [ "${QUICK:-0}" = "1" ]; then
  PEER_WINDOWS=(--window-s 0.3 --windows 5)
else
  PEER_WINDOWS=()
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# Only this script's own files are cleared, so a stale figure never reaches the report.
rm -f "$OUT"/tributary-*.json "$OUT"/pytorch-*.json "$OUT"/tributary-*.log "$OUT"/pytorch-*.log "$OUT"/peer-skipped.txt \
      "$OUT"/failures.txt "$OUT"/report.json "$OUT"/report.md "$OUT"/run.json

# --- the Tributary binary --------------------------------------------------------------------
if [ -n "${TRIBUTARY:-}" ]; then
  bin=$TRIBUTARY
else
  echo "== swift build -c release"
  swift build -c release
  bin="$(swift build -c release --show-bin-path)/tributary"
fi
if [ ! -x "$bin" ]; then
  echo "bench.sh: no executable tributary at $bin" >&2
  exit 1
fi

# QUICK=1 shortens Tributary's windows too, where its `bench` takes window options.
TRIB_WINDOWS=()
if [ "${QUICK:-0}" = "1" ] && "$bin" bench --help 2>&1 | grep -q -- '--window-seconds'; then
  TRIB_WINDOWS=(--window-seconds 0.3 --windows 5)
fi

# --- the peer --------------------------------------------------------------------------------
peer=1
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
  peer=0
  echo "PyTorch is not importable by $PY, so the PyTorch peer was skipped." | tee "$OUT/peer-skipped.txt"
elif [ ! -f "$PEERS_DIR/bench_realnvp.py" ]; then
  peer=0
  echo "No bench_realnvp.py in $PEERS_DIR (set PEERS_DIR), so the PyTorch peer was skipped." | tee "$OUT/peer-skipped.txt"
fi

# Record how the run was made (the report copies it into report.json).
"$PY" - "$OUT/run.json" "$bin" "$peer" "${QUICK:-0}" "$CONFIGS" "$THREADS" <<'EOF'
import json, os, platform, subprocess, sys, time
out, binary, peer, quick, configs, threads = sys.argv[1:]
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in sh("lscpu").splitlines() if l.startswith("Model name:")), platform.processor())
json.dump({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tributary": binary,
           "git_commit": sh("git", "rev-parse", "HEAD"), "git_dirty": bool(sh("git", "status", "--porcelain")),
           "peer": peer == "1", "quick": quick == "1", "configs": configs.split(), "threads": threads.split(),
           "cpu": cpu, "cpus": os.cpu_count(), "loadavg": open("/proc/loadavg").read().split()[:3]},
          open(out, "w"), indent=2)
EOF

failed=0
fail() {  # fail MESSAGE
  echo "   !! $1" | tee -a "$OUT/failures.txt"
  failed=1
}

for c in $CONFIGS; do
  for t in $THREADS; do
    tag="$c-t$t"
    echo "== $tag: tributary bench --config $c --threads $t --json ${TRIB_WINDOWS[*]:-}"
    if OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t timeout "$LIMIT" \
         "$bin" bench --config "$c" --threads "$t" --json ${TRIB_WINDOWS[@]+"${TRIB_WINDOWS[@]}"} \
         > "$OUT/tributary-$tag.json" 2> "$OUT/tributary-$tag.log"; then
      tail -c 400 "$OUT/tributary-$tag.json" | sed 's/^/   /'
    else
      rc=$?
      tail -n 5 "$OUT/tributary-$tag.log" | sed 's/^/   /'
      rm -f "$OUT/tributary-$tag.json"
      fail "tributary bench $tag exited with $rc (log: $OUT/tributary-$tag.log)"
    fi
    if [ "$peer" = 1 ]; then
      echo "== $tag: PyTorch peer bench_realnvp.py --config $c --threads $t ${PEER_WINDOWS[*]:-}"
      if OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t timeout "$LIMIT" \
           "$PY" "$PEERS_DIR/bench_realnvp.py" --config "$c" --threads "$t" ${PEER_WINDOWS[@]+"${PEER_WINDOWS[@]}"} \
           --out "$OUT/pytorch-$tag.json" > "$OUT/pytorch-$tag.log" 2>&1; then
        tail -n 1 "$OUT/pytorch-$tag.log" | sed 's/^/   /'
      else
        rc=$?
        tail -n 5 "$OUT/pytorch-$tag.log" | sed 's/^/   /'
        rm -f "$OUT/pytorch-$tag.json"
        fail "PyTorch peer $tag exited with $rc (log: $OUT/pytorch-$tag.log)"
      fi
    fi
  done
done

echo
"$PY" "$script_dir/bench_report.py" "$OUT" | tee "$OUT/report.md"
if [ "$failed" != 0 ]; then
  echo "bench.sh: some runs failed:" >&2
  cat "$OUT/failures.txt" >&2
  exit 1
fi
