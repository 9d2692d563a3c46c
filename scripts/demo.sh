#!/usr/bin/env bash
# Installs the system packages if missing, builds, and runs the main job: a local cluster (a
# coordinator and 2 worker processes over IPC) trains a RealNVP flow on the two-moons dataset,
# then the model scores fresh rows and draws samples. Results go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_system_packages

swift build -c release
bin="$(swift build -c release --show-bin-path)/tributary"
out=out/demo
mkdir -p "$out"

echo "== train on a local cluster of 2 workers (8 couplings, H=64, 2,000 steps of 512 rows)"
"$bin" train --data moons --steps 2000 --batch 512 --couplings 8 --hidden 64 --seed 0 --workers 2 \
    --out "$out/moons.safetensors" --metrics "$out/metrics.jsonl"

echo "== score 10,000 fresh rows on a local cluster of 2 workers (journaled; the same bytes as one process)"
"$bin" dataset moons --rows 10000 --seed 1 --output "$out/moons-test.csv"
"$bin" score --model "$out/moons.safetensors" --input "$out/moons-test.csv" --output "$out/moons-test-logp.npy" \
    --workers 2 --chunk 2000
echo "== plot the training curves"
"$bin" plot --metrics "$out/metrics.jsonl" --out "$out/training.svg"

echo "== sample 5,000 rows"
"$bin" sample --model "$out/moons.safetensors" --count 5000 --seed 0 --output "$out/samples.csv" --log-prob "$out/samples-logp.csv"
echo "first samples (x0, x1):"
sed -n 2,6p "$out/samples.csv"
echo "files in $out: $(ls "$out" | tr '\n' ' ')"
