#!/usr/bin/env bash
# The main job: the K-FAC family (kfac, ekfac, tkfac, tekfac) against SGD, Adam, AdamW, Muon, Shampoo and SOAP on the K-FAC paper's
# Fashion-MNIST autoencoder, same seed and batches, with the paper's statistics settings (statistics on 1/8 of the
# batch, refresh every 20 steps). Writes a report folder (summary.md, PNG plots, per-run JSON/CSV) and prints the
# summary. Installs and builds what is missing first.
# Usage: scripts/main-job.sh [steps] [report-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-100}"
OUT="${2:-reports/main-job}"
bash scripts/build.sh >/dev/null
echo "Report folder: $OUT (summary.md, loss_vs_step.png, loss_vs_seconds.png)"
./build/tools/kfac/kfac compare --model autoencoder --methods sgd,adam,adamw,muon,shampoo,soap,kfac,ekfac,tkfac,tekfac \
  --steps "$STEPS" --batch-size 1000 --seed 0 --stats-fraction 0.125 --refresh-period 20 --out "$OUT"
