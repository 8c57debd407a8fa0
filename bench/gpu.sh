#!/usr/bin/env bash
# The GPU benchmark (issue 26): AdamW and the K-FAC methods on the autoencoder, the CNN, vit and char-lm (and Muon
# and SOAP on the transformers), on CUDA,
# same seed and batches per model (`kfac compare`). Each report folder has summary.md (s/step, ratio to the first
# method, time to its final loss); this script concatenates them into <out>/summary.md with the GPU and torch.
# Usage: bench/gpu.sh [kfac-binary] [out-dir] [steps]     (scripts/device-check.sh runs it on the device machine)
# It first counts host synchronizations per step (bench/cuda_syncs.py; the kfac package on PYTHONPATH), and ends with
# larger transformers through the Python package (bench/gpu_transformers.py).
set -uo pipefail
cd "$(dirname "$0")/.."
KFAC="${1:-build/tools/kfac/kfac}"
OUT="${2:-reports/gpu}"
STEPS="${3:-${BENCH_STEPS:-100}}"
DEVICE="${BENCH_DEVICE:-cuda}"
mkdir -p "$OUT"
{
  echo "# GPU benchmark, $STEPS steps per run, device $DEVICE"
  echo
  echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo none)"
  echo "torch: $(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null)"
  echo
} >"$OUT/summary.md"
compare() {  # name, then the compare flags
  local name=$1
  shift
  echo "## $name: $*" >>"$OUT/summary.md"
  if "$KFAC" compare --device "$DEVICE" --steps "$STEPS" --seed 0 --eval-examples 1000 --out "$OUT/$name" "$@" \
    >"$OUT/$name.log" 2>&1; then
    sed -n '/^|/p' "$OUT/$name/summary.md" >>"$OUT/summary.md"
  else
    echo "FAILED (rc $?):" >>"$OUT/summary.md"
    tail -5 "$OUT/$name.log" >>"$OUT/summary.md"
  fi
  echo >>"$OUT/summary.md"
}
echo "## Host synchronizations per step (bench/cuda_syncs.py)" >>"$OUT/summary.md"
python3 bench/cuda_syncs.py --json "$OUT/syncs.json" >>"$OUT/summary.md" 2>"$OUT/syncs.log" ||
  { echo "FAILED:"; tail -5 "$OUT/syncs.log"; } >>"$OUT/summary.md"
echo >>"$OUT/summary.md"
compare autoencoder --model autoencoder --batch-size 1000 --methods adamw,kfac,ekfac,tkfac
compare cnn --model cnn --batch-size 128 --methods adamw,kfac,ekfac
compare vit --model vit --batch-size 128 --methods adamw,kfac,ekfac
compare char-lm --model char-lm --dataset kjv --batch-size 32 --methods adamw,kfac,ekfac
# Muon and SOAP apart, so that a failure of theirs leaves the K-FAC rows above.
compare vit-muon-soap --model vit --batch-size 128 --methods adamw,muon,soap
compare char-lm-muon-soap --model char-lm --dataset kjv --batch-size 32 --methods adamw,muon,soap
# Larger settings that fill a GPU (width 512, 6 blocks, batch 64, char-lm windows of 256), rows as they finish.
echo "## Larger transformers (bench/gpu_transformers.py --steps ${GPU_TRANSFORMER_STEPS:-150})" >>"$OUT/summary.md"
python3 bench/gpu_transformers.py --device "$DEVICE" --steps "${GPU_TRANSFORMER_STEPS:-150}" >>"$OUT/summary.md" \
  2>"$OUT/gpu_transformers.log" || { echo "FAILED:"; tail -5 "$OUT/gpu_transformers.log"; } >>"$OUT/summary.md"
cat "$OUT/summary.md"
