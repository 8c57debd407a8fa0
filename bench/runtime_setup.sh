#!/usr/bin/env bash
# What the runtime setup is worth: SGD and K-FAC (paper statistics settings) on the autoencoder, batch 1000, with
#   * OpenBLAS's fallback kernel forced (OPENBLAS_CORETYPE=Prescott: the tool respects a value that is set),
#   * the tool's own choice (no variable; where OpenBLAS falls back by itself, the tool relaunches with the best kernel;
#     KFAC_TEST_OPENBLAS_KERNEL=Prescott plays that fallback on a machine whose OpenBLAS knows its CPU),
#   * the variable set by hand to the best kernel,
#   * the tool's choice with subnormals kept (--keep-subnormals).
# Prints a Markdown table of seconds per step (mean from step 2 on, and median) and the final training loss.
# By hand only: it sets OPENBLAS_CORETYPE, which no test or CI step may do.
# Usage: bench/runtime_setup.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-50}"
OUT=bench/results/runtime_setup
mkdir -p "$OUT"
KFAC=./build/tools/kfac/kfac
BEST=$("$KFAC" info --json | grep -o '"best_kernel": "[^"]*"' | sed 's/.*: "\(.*\)"/\1/')
"$KFAC" info
echo
echo "| setting | method | s/step | median | final train loss | kernel used |"
echo "|---|---|---|---|---|---|"
run() {  # label, env assignments..., -- , method, extra flags...
  local label="$1"; shift
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  local method="$1"; shift
  local json="$OUT/${method}_$(echo "$label" | tr -c 'a-zA-Z0-9' '_').json"
  local flags=(); [ "$method" != sgd ] && flags=(--stats-fraction 0.125 --refresh-period 20)
  env "${envs[@]}" "$KFAC" train --model autoencoder --method "$method" --steps "$STEPS" --batch-size 1000 --seed 0 \
    --eval-examples 1000 --quiet "${flags[@]}" "$@" --metrics-json "$json" > /dev/null 2> "$json.err"
  python3 - "$json" "$label" "$method" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {r['seconds_per_step']:.4f} | {r['timing']['median']:.4f} | "
      f"{r['train_loss']:.2f} | {r['runtime']['blas']['kernel']} |")
PY
}
for method in sgd kfac; do
  run "OPENBLAS_CORETYPE=Prescott (fallback forced)" OPENBLAS_CORETYPE=Prescott -- "$method"
  run "tool's choice, fallback played (relaunch)" KFAC_TEST_OPENBLAS_KERNEL=Prescott -- "$method"
  run "tool's choice" KFAC_NOTHING=1 -- "$method"
  run "OPENBLAS_CORETYPE=$BEST by hand" "OPENBLAS_CORETYPE=$BEST" -- "$method"
  run "tool's choice, --keep-subnormals" KFAC_NOTHING=1 -- "$method" --keep-subnormals
done
