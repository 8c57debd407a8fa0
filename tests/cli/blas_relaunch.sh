#!/usr/bin/env bash
# The tool's BLAS kernel selection, end to end. KFAC_TEST_OPENBLAS_KERNEL=Prescott makes the tool believe OpenBLAS fell
# back to its SSE3 kernels by itself; the tool must then start again once with OPENBLAS_CORETYPE set to the CPU's best
# kernel, say so on stderr, and report it. The opt-outs must keep the BLAS's choice. This script never sets
# OPENBLAS_CORETYPE: where the machine sets it, the tool must keep that value.
set -u
KFAC="$1"; OUT="$2"
mkdir -p "$OUT"
field() { grep -o "\"$1\": \"[^\"]*\"" "$2" | head -1 | sed 's/.*: "\(.*\)"/\1/'; }

"$KFAC" info --json > "$OUT/plain.json" 2> "$OUT/plain.err" || { echo "FAIL: kfac info --json"; exit 1; }
library=$(field library "$OUT/plain.json"); best=$(field best_kernel "$OUT/plain.json")
for key in '"torch"' '"version"' '"cuda_devices"' '"distributed_backends"' '"blas"' '"kernel"' '"config"' \
           '"openblas_coretype_env"' '"cpu"' '"flags"' '"available_cores"' '"threads"' '"intra_op"' '"openmp"' \
           '"flush_denormal"' '"warnings"'; do
  grep -q "$key" "$OUT/plain.json" || { echo "FAIL: kfac info --json has no $key"; exit 1; }
done
if [ "$library" != "OpenBLAS" ] || [ -z "$best" ]; then
  echo "PASS: blas relaunch (nothing to select: BLAS '$library', best kernel '$best')"; exit 0
fi

KFAC_TEST_OPENBLAS_KERNEL=Prescott "$KFAC" info --json > "$OUT/fallback.json" 2> "$OUT/fallback.err" || { echo "FAIL: run"; exit 1; }
if [ -n "${OPENBLAS_CORETYPE+x}" ]; then  # set by this machine on purpose: kept, no relaunch
  ! grep -q "starting again" "$OUT/fallback.err" || { echo "FAIL: relaunched over OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"; exit 1; }
  [ "$(field openblas_coretype_env "$OUT/fallback.json")" = "$OPENBLAS_CORETYPE" ] || { echo "FAIL: value not kept"; exit 1; }
  echo "PASS: blas relaunch (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE set by the machine, kept)"; exit 0
fi
[ "$(grep -c "starting again with OPENBLAS_CORETYPE=$best" "$OUT/fallback.err")" -eq 1 ] || {
  echo "FAIL: expected one line about OPENBLAS_CORETYPE=$best on stderr:"; cat "$OUT/fallback.err"; exit 1; }
[ "$(field openblas_coretype_env "$OUT/fallback.json")" = "$best" ] || { echo "FAIL: not relaunched with $best"; exit 1; }
[ "$(field relaunched_from "$OUT/fallback.json")" = "Prescott" ] || { echo "FAIL: relaunched_from"; exit 1; }
# The relaunch runs the kernel it asked for. (That need not be OpenBLAS's own pick: 0.3.21 takes SkylakeX on some
# AVX-512 BF16 CPUs it half knows, where Cooperlake's kernels also run.)
[ "$(field kernel "$OUT/fallback.json")" = "$best" ] || {
  echo "FAIL: kernel after relaunch is '$(field kernel "$OUT/fallback.json")', asked for '$best'"; exit 1; }

for optout in "env KFAC_BLAS_AUTOSELECT=0" "--keep-blas-kernel"; do
  if [ "$optout" = "--keep-blas-kernel" ]; then
    KFAC_TEST_OPENBLAS_KERNEL=Prescott "$KFAC" info --json --keep-blas-kernel > "$OUT/kept.json" 2> "$OUT/kept.err"
  else
    KFAC_BLAS_AUTOSELECT=0 KFAC_TEST_OPENBLAS_KERNEL=Prescott "$KFAC" info --json > "$OUT/kept.json" 2> "$OUT/kept.err"
  fi
  ! grep -q "starting again" "$OUT/kept.err" || { echo "FAIL: $optout still relaunched"; exit 1; }
  [ -z "$(field openblas_coretype_env "$OUT/kept.json")" ] || { echo "FAIL: $optout set OPENBLAS_CORETYPE"; exit 1; }
  grep -q '"id": "blas-kernel"' "$OUT/kept.json" || { echo "FAIL: $optout: no blas-kernel warning"; exit 1; }
done

# Launched ranks inherit the choice: a 2-rank run relaunches once (in the launcher), the ranks keep its value.
KFAC_TEST_OPENBLAS_KERNEL=Prescott "$KFAC" train --nproc 2 --model mlp --method kfac --steps 2 --batch-size 32 \
  --eval-examples 32 --quiet --metrics-json "$OUT/ranks.json" > /dev/null 2> "$OUT/ranks.err" || { echo "FAIL: ranks"; cat "$OUT/ranks.err"; exit 1; }
[ "$(grep -c "starting again" "$OUT/ranks.err")" -eq 1 ] || { echo "FAIL: ranks relaunched more than once"; exit 1; }
[ "$(field openblas_coretype_env "$OUT/ranks.json")" = "$best" ] || { echo "FAIL: rank 0 did not inherit $best"; exit 1; }
echo "PASS: blas relaunch to $best, opt-outs kept the BLAS's choice, ranks inherited it"
