#!/usr/bin/env bash
# The main job: trains the K-FAC paper's autoencoder on Fashion-MNIST with SGD, Adam and K-FAC (same seed, same
# batches) and prints a comparison table. Installs and builds what is missing first.
# Usage: scripts/main-job.sh [steps] [output-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-200}"
OUT="${2:-reports/main-job}"
bash scripts/build.sh >/dev/null
mkdir -p "$OUT"
echo "Report folder: $OUT"
for method in sgd adam kfac; do
  ./build/tools/kfac/kfac train --model autoencoder --method "$method" --steps "$STEPS" --batch-size 1000 \
    --seed 0 --metrics-json "$OUT/$method.json"
done
echo
echo "| method | train loss | test loss | seconds/step | step time / SGD |"
echo "|---|---|---|---|---|"
sgd=$(grep -o '"seconds_per_step": [0-9.e+-]*' "$OUT/sgd.json" | awk '{print $2}')
for method in sgd adam kfac; do
  f="$OUT/$method.json"
  tl=$(grep -o '"train_loss": [0-9.e+-]*' "$f" | head -1 | awk '{print $2}')
  te=$(grep -o '"test_loss": [0-9.e+-]*' "$f" | awk '{print $2}')
  sp=$(grep -o '"seconds_per_step": [0-9.e+-]*' "$f" | awk '{print $2}')
  awk -v m="$method" -v a="$tl" -v b="$te" -v c="$sp" -v s="$sgd" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.4f | %.2f |\n", m, a, b, c, c / s }'
done
