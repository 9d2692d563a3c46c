#!/usr/bin/env bash
# Cluster benchmark: `tributary bench --cluster` (a coordinator and 1, 2, 4 worker processes over
# IPC, one thread each) with each exchange (star, sharded) and, where PyTorch is installed, the
# PyTorch DDP reference (../shared/bench/peers/ddp_ref.py: gloo, 2 processes x 1 thread) back to
# back per config, then a Markdown table of speed-ups, communication shares and the bytes each
# worker sends per step.
#
# Usage: scripts/bench_cluster.sh            configs tab16 and wide64
#        CONFIGS=tab16 scripts/bench_cluster.sh
# Environment: CONFIGS, WORKERS (default 1,2,4), STEPS (timed steps per worker count, default 30),
#   EXCHANGES (default "star sharded"), CURVE=1 (also each exchange under CURVE),
#   BENCH_OUT (default .build/bench-cluster), PEERS_DIR, TRIBUTARY (a binary to use), PYTHON.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
cd "$repo_root"
PY=${PYTHON:-python3}
CONFIGS=${CONFIGS:-tab16 wide64}
WORKERS=${WORKERS:-1,2,4}
STEPS=${STEPS:-30}
EXCHANGES=${EXCHANGES:-star sharded}
CURVE=${CURVE:-0}
PEERS_DIR=${PEERS_DIR:-$repo_root/../shared/bench/peers}
OUT=${BENCH_OUT:-.build/bench-cluster}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/tributary-cluster-*.jsonl "$OUT"/ddp-*.json

if [ -n "${TRIBUTARY:-}" ]; then
    bin=$TRIBUTARY
else
    swift build -c release
    bin="$(swift build -c release --show-bin-path)/tributary"
fi

have_torch=0
if $PY -c "import torch" >/dev/null 2>&1 && [ -f "$PEERS_DIR/ddp_ref.py" ]; then have_torch=1; fi

for config in $CONFIGS; do
    : > "$OUT/tributary-cluster-$config.jsonl"
    for exchange in $EXCHANGES; do
        for curve in 0 $([ "$CURVE" = 1 ] && echo 1); do
            flag=$([ "$curve" = 1 ] && echo --curve || true)
            echo "== $config: tributary bench --cluster --workers $WORKERS --exchange $exchange $flag"
            "$bin" bench --cluster --config "$config" --workers "$WORKERS" --steps "$STEPS" --exchange "$exchange" $flag --json \
                >> "$OUT/tributary-cluster-$config.jsonl" 2>> "$OUT/tributary-cluster-$config.log"
        done
    done
    cat "$OUT/tributary-cluster-$config.jsonl"
    if [ "$have_torch" = 1 ]; then
        echo "== $config: PyTorch DDP (ddp_ref.py)"
        OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $PY "$PEERS_DIR/ddp_ref.py" --configs "$config" \
            --out "$OUT/ddp-$config.json" 2>&1 | tail -1
    fi
done

$PY - "$OUT" "$CONFIGS" <<'PYEOF'
import json, os, sys
out, configs = sys.argv[1], sys.argv[2].split()
print()
print("| config | exchange | workers | Tributary samples/s | speed-up vs 1 worker | step ms | compute ms | comm share | exchange ms/step | bytes sent per worker per step (× 2P(W−1)/W) |")
print("|---|---|---|---|---|---|---|---|---|---|")
ddp_rows = []
for c in configs:
    rows = [json.loads(l) for l in open(os.path.join(out, f"tributary-cluster-{c}.jsonl")) if l.strip()]
    base = {}
    for r in rows:
        key = (r["exchange"], r["curve"])
        base.setdefault(key, r["train_samples_per_s"])
        exch = (r["step_seconds"] - r["compute_seconds_per_step"]) * 1000
        w, p = r["workers"], r["parameter_count"]
        bound = 2 * p * 4 * (w - 1) / w
        ratio = f"{r['bytes_sent_per_worker_per_step'] / bound:.2f}" if w > 1 else "–"
        name = r["exchange"] + (" (CURVE)" if r["curve"] else "")
        print(f"| {c} | {name} | {w} | {r['train_samples_per_s']:,.0f} | {r['train_samples_per_s'] / base[key]:.2f}× | "
              f"{r['step_seconds'] * 1000:.2f} | {r['compute_seconds_per_step'] * 1000:.2f} | {r['comm_fraction'] * 100:.0f} % | {max(exch, 0):.2f} | "
              f"{r['bytes_sent_per_worker_per_step']:,.0f} ({ratio}) |")
    p = os.path.join(out, f"ddp-{c}.json")
    if os.path.exists(p):
        d = json.load(open(p))["results"][0]
        if d.get("ok"):
            one, two = d["1p_1t"]["median"], d["2p_1t"]["train"]["median"]
            ddp_rows.append(f"| {c} | {one:,.0f} | {two:,.0f} | {two / one:.2f}× | {d['2p_1t']['allreduce']['median_ms']:.2f} |")
if ddp_rows:
    print()
    print("| config | PyTorch 1 proc × 1 thread | DDP 2 procs × 1 thread | DDP speed-up | all-reduce ms |")
    print("|---|---|---|---|---|")
    print("\n".join(ddp_rows))
else:
    print("\n(PyTorch DDP skipped: torch or the peer harness is not available)")
PYEOF
