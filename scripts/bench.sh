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
#   SCORE_CONFIGS  configs of the scoring benchmark: `tributary bench --score --workers 1,2`
#                  (whole `score` jobs on a local cluster) right before the PyTorch peer's
#                  log_prob at 1 thread                        (default: "tab16"; "" skips it)
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
rm -f "$OUT"/score-*.jsonl "$OUT"/score-*.log "$OUT"/score-report.md
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

# --- scoring: whole jobs on 1 and 2 local workers vs PyTorch log_prob (1 thread), back to back ---
SCORE_CONFIGS=${SCORE_CONFIGS-tab16}
for c in $SCORE_CONFIGS; do
  echo "== score-$c: tributary bench --score --config $c --workers 1,2 --json"
  if timeout "$LIMIT" "$bin" bench --score --config "$c" --workers 1,2 --json \
       > "$OUT/score-$c.jsonl" 2> "$OUT/score-$c.log"; then
    sed 's/^/   /' "$OUT/score-$c.jsonl"
  else
    rc=$?
    tail -n 5 "$OUT/score-$c.log" | sed 's/^/   /'
    rm -f "$OUT/score-$c.jsonl"
    fail "tributary bench --score $c exited with $rc (log: $OUT/score-$c.log)"
  fi
  if [ "$peer" = 1 ]; then
    echo "== score-$c: PyTorch peer bench_realnvp.py --config $c --threads 1 (log_prob)"
    if OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 timeout "$LIMIT" \
         "$PY" "$PEERS_DIR/bench_realnvp.py" --config "$c" --threads 1 ${PEER_WINDOWS[@]+"${PEER_WINDOWS[@]}"} \
         --out "$OUT/score-pytorch-$c.json" > "$OUT/score-pytorch-$c.log" 2>&1; then
      tail -n 1 "$OUT/score-pytorch-$c.log" | sed 's/^/   /'
    else
      rc=$?
      rm -f "$OUT/score-pytorch-$c.json"
      fail "PyTorch peer (score) $c exited with $rc (log: $OUT/score-pytorch-$c.log)"
    fi
  fi
done
if [ -n "$SCORE_CONFIGS" ]; then
  "$PY" - "$OUT" "$SCORE_CONFIGS" > "$OUT/score-report.md" <<'PYEOF'
import json, os, sys
out, configs = sys.argv[1], sys.argv[2].split()
print("| config | workers | Tributary score rows/s | PyTorch log_prob rows/s (1 thread) | vs PyTorch (target ≥ 1.8× at 1 worker) | vs 1 worker (target ≥ 1.8× at 2) |")
print("|---|---|---|---|---|---|")
for c in configs:
    path = os.path.join(out, f"score-{c}.jsonl")
    rows = [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
    peer_path = os.path.join(out, f"score-pytorch-{c}.json")
    torch = json.load(open(peer_path))["log_prob"]["median"] if os.path.exists(peer_path) else None
    base = rows[0]["score_rows_per_s"] if rows else None
    for r in rows:
        v = r["score_rows_per_s"]
        vs_torch = f"{v / torch:.2f}×" if torch else "–"
        vs_one = f"{v / base:.2f}×" if base else "–"
        print(f"| {c} | {r['workers']} | {v:,.0f} | {torch:,.0f} | {vs_torch} | {vs_one} |" if torch else
              f"| {c} | {r['workers']} | {v:,.0f} | – | – | {vs_one} |")
PYEOF
fi

echo
"$PY" "$script_dir/bench_report.py" "$OUT" | tee "$OUT/report.md"
if [ -s "$OUT/score-report.md" ]; then
  echo
  tee -a "$OUT/report.md" < "$OUT/score-report.md"
fi
if [ "$failed" != 0 ]; then
  echo "bench.sh: some runs failed:" >&2
  cat "$OUT/failures.txt" >&2
  exit 1
fi
