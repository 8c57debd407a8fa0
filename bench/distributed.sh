#!/usr/bin/env bash
# Scaling of data-parallel K-FAC on this machine: the autoencoder (batch 1000, paper statistics settings) on 1, 2 and 4
# local ranks (Gloo over 127.0.0.1), time per step and bytes each rank passes to collectives per step, for SGD and
# K-FAC with both gradient-worker extremes. Ranks share the machine's cores.
# Usage: bench/distributed.sh [steps] [out-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-30}"
OUT="${2:-bench/results/distributed}"
bash scripts/build.sh >/dev/null
mkdir -p "$OUT"
KFAC=./build/tools/kfac/kfac
common=(train --model autoencoder --steps "$STEPS" --batch-size 1000 --seed 0 --stats-fraction 0.125
        --refresh-period 20 --eval-examples 1000 --quiet)
echo "| method | ranks | grad workers | s/step | MB/step per rank | final train loss |"
echo "|---|---|---|---|---|---|"
for method in sgd kfac; do
  for n in 1 2 4; do
    fractions="1"
    [ "$method" = kfac ] && [ "$n" -gt 1 ] && fractions="1 $(python3 -c "print(1/$n)")"
    for f in $fractions; do
      extra=()
      [ "$method" = kfac ] && extra=(--grad-worker-fraction "$f")
      "$KFAC" "${common[@]}" --method "$method" --nproc "$n" "${extra[@]}" --metrics-json "$OUT/$method-$n-$f.json" >/dev/null
      python3 - "$OUT/$method-$n-$f.json" "$method" "$n" "$f" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {float(sys.argv[4]):.2f} | {m['seconds_per_step']:.4f} | "
      f"{m['bytes_per_step'] / 1e6:.2f} | {m['train_loss']:.2f} |")
PY
    done
  done
done
