#!/usr/bin/env bash
# The transformer benchmarks of issue 15: AdamW, Muon, Shampoo, SOAP, K-FAC (expand and reduce) and EKFAC on `vit` (Fashion-MNIST) and
# `char-lm` (the King James Bible), each with its learning rate tuned on a small grid, same seed and batches.
# Writes one metrics JSON per run under the report folder and prints the summary (bench/transformers_summary.py):
# best learning rate per method, final training loss, steps and seconds to reach AdamW's final loss, step time over
# AdamW's, the slowest K-FAC phase, and the BLAS kernel and threads the runs used.
# Usage: bench/transformers.sh [steps] [report-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-300}"
OUT="${2:-reports/transformers}"
bash scripts/build.sh >/dev/null
KFAC=./build/tools/kfac/kfac
run() {  # model data batch method sharing lr
  local file="$OUT/$1/$4-$5-$6.json"
  mkdir -p "$OUT/$1"
  "$KFAC" train --model "$1" $2 --batch-size "$3" --method "$4" --weight-sharing "$5" --lr "$6" --steps "$STEPS" \
    --seed 0 --eval-examples 1000 --quiet --metrics-json "$file" >/dev/null
}
for spec in "vit||128" "char-lm|--dataset kjv|32"; do
  IFS='|' read -r model data batch <<<"$spec"
  for lr in 3e-4 1e-3 3e-3; do run "$model" "$data" "$batch" adamw expand "$lr"; done
  # The alternatives (issue 25) on the grids of bench/compare_optimizers.py.
  for lr in 0.01 0.03; do run "$model" "$data" "$batch" muon expand "$lr"; done
  for lr in 1e-3 3e-3; do
    run "$model" "$data" "$batch" shampoo expand "$lr"
    run "$model" "$data" "$batch" soap expand "$lr"
  done
  for lr in 0.03 0.1 0.3 1; do
    run "$model" "$data" "$batch" kfac expand "$lr"
    run "$model" "$data" "$batch" kfac reduce "$lr"
    run "$model" "$data" "$batch" ekfac expand "$lr"
  done
done
/usr/bin/python3 bench/transformers_summary.py "$OUT"
