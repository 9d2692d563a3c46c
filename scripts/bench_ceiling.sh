#!/usr/bin/env bash
# What "2 workers vs 1" can reach on this machine at best, whatever the exchange: the training
# rate of one single-process `tributary bench` alone, then of two started together (independent
# processes, one thread each, no exchange at all), RUNS times in turn. The sum of the pair over
# the one alone bounds the speed-up of any 2-worker run here: on shared or virtual cores two
# compute-bound processes do not get two cores' worth of work done (docs/benchmarks.md, "The
# machine's ceiling for 2 workers").
#
# Usage: scripts/bench_ceiling.sh            configs tab16 and wide64
#        CONFIGS=wide64 RUNS=5 scripts/bench_ceiling.sh
# Environment: CONFIGS, RUNS (default 3), WINDOWS (timed windows per bench, default 15),
#   TRIBUTARY (a binary to use), PYTHON.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$script_dir/.."
PY=${PYTHON:-python3}
CONFIGS=${CONFIGS:-tab16 wide64}
RUNS=${RUNS:-3}
WINDOWS=${WINDOWS:-15}
if [ -n "${TRIBUTARY:-}" ]; then
    bin=$TRIBUTARY
else
    swift build -c release
    bin="$(swift build -c release --show-bin-path)/tributary"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rate() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["train_samples_per_s"])' "$1"; }

echo "load before: $(uptime | sed 's/.*load average/load average/')"
echo "| config | run | 1 process, samples/s | 2 processes together, samples/s (each) | ceiling (pair / alone) |"
echo "|---|---|---|---|---|"
for config in $CONFIGS; do
    ratios=()
    for ((run = 1; run <= RUNS; run++)); do
        "$bin" bench --config "$config" --windows "$WINDOWS" --json > "$work/alone.json"
        "$bin" bench --config "$config" --windows "$WINDOWS" --json > "$work/a.json" &
        first=$!
        "$bin" bench --config "$config" --windows "$WINDOWS" --json > "$work/b.json"
        wait "$first"
        alone=$(rate "$work/alone.json"); a=$(rate "$work/a.json"); b=$(rate "$work/b.json")
        ratio=$("$PY" -c "import sys; print(f'{(float(sys.argv[2]) + float(sys.argv[3])) / float(sys.argv[1]):.2f}')" "$alone" "$a" "$b")
        ratios+=("$ratio")
        "$PY" -c "import sys; a, x, y = map(float, sys.argv[1:4]); print(f'| {sys.argv[4]} | {sys.argv[5]} | {a:,.0f} | {x + y:,.0f} ({x:,.0f} + {y:,.0f}) | {sys.argv[6]}× |')" \
            "$alone" "$a" "$b" "$config" "$run" "$ratio"
    done
    echo "$config: median ceiling $(printf '%s\n' "${ratios[@]}" | sort -n | "$PY" -c 'import sys, statistics; print(statistics.median(float(l) for l in sys.stdin))')×"
done
echo "load after: $(uptime | sed 's/.*load average/load average/')"
