#!/usr/bin/env bash
# Koroko et al.'s comparison at small scale: one-level K-FAC against each coarse space and block-tridiagonal K-FAC,
# same seed, batches and step size, on the Fashion-MNIST autoencoder and the small CNN; then the angle of each
# direction to the exact damped natural gradient on tiny networks (kfac fisher).
# Usage: bench/two_level.sh [steps-autoencoder] [steps-cnn] [out-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
AE_STEPS="${1:-100}"
CNN_STEPS="${2:-200}"
OUT="${3:-bench/results/two-level}"
bash scripts/build.sh >/dev/null
KFAC=./build/tools/kfac/kfac
SPACES="kfac,kfac+nicolaides,kfac+nicolaides+krylov,kfac+spectral,kfac+residual,kfac+residual+krylov,kfac+tselepidis"
COMBINE="${COMBINE:-additive}"
$KFAC compare --model autoencoder --methods "$SPACES,kfac+block-tridiagonal" --combine "$COMBINE" --steps "$AE_STEPS" \
  --batch-size 1000 --seed 0 --stats-fraction 0.125 --refresh-period 20 --out "$OUT/autoencoder-$COMBINE"
$KFAC compare --model cnn --methods "$SPACES" --combine "$COMBINE" --steps "$CNN_STEPS" --batch-size 128 --seed 0 \
  --stats-fraction 0.25 --refresh-period 20 --out "$OUT/cnn-$COMBINE"
for model in mlp cnn; do
  $KFAC fisher --model "$model" --examples 64 --combine "$COMBINE" \
    --methods "kfac,${SPACES#kfac,},kfac+block-tridiagonal" | tee "$OUT/fisher-$model-$COMBINE.md"
done
