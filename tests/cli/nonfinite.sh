#!/usr/bin/env bash
# A run whose loss becomes non-finite stops with a non-zero exit and a message naming the step, and keeps the last
# checkpoint written before (never one of the broken state), for SGD, Adam and a K-FAC method.
set -u
KFAC="$1"; OUT="$2"
mkdir -p "$OUT"
for method in sgd adam kfac; do
  rm -f "$OUT/$method.pt"
  "$KFAC" train --model mlp --method "$method" --lr 1e30 --kl-clip 0 --steps 20 --batch-size 16 --eval-examples 16 \
    --quiet --checkpoint "$OUT/$method.pt" --checkpoint-every 1 > "$OUT/$method.out" 2> "$OUT/$method.err"
  rc=$?
  [ "$rc" -eq 2 ] || { echo "FAIL: $method exited $rc, expected 2"; cat "$OUT/$method.err"; exit 1; }
  grep -q "step [0-9]*: the training loss is .*nan; stopping" "$OUT/$method.err" || { echo "FAIL: $method message"; cat "$OUT/$method.err"; exit 1; }
  ! grep -q "train_loss" "$OUT/$method.out" || { echo "FAIL: $method reported a result"; exit 1; }
  step=$(grep -o 'step [0-9]*' "$OUT/$method.err" | head -1 | grep -o '[0-9]*')
  if [ "$step" -gt 0 ]; then
    [ -s "$OUT/$method.pt" ] || { echo "FAIL: $method lost the checkpoint of step $step"; exit 1; }
  fi
done
# Training ends with finite losses but the trained weights evaluate to NaN (the test seam poisons them): the result
# and the JSON are still written, and the exit code says the run failed.
KFAC_TEST_POISON_EVALUATION=1 "$KFAC" train --model mlp --method sgd --steps 2 --batch-size 16 --eval-examples 16 \
  --quiet --metrics-json "$OUT/poisoned.json" > "$OUT/poisoned.out" 2> "$OUT/poisoned.err"
rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: a NaN evaluation exited $rc, expected 2"; cat "$OUT/poisoned.err"; exit 1; }
grep -q "evaluation loss is not finite (train nan, test nan)" "$OUT/poisoned.err" || { echo "FAIL: NaN evaluation message"; cat "$OUT/poisoned.err"; exit 1; }
[ -s "$OUT/poisoned.json" ] || { echo "FAIL: the metrics JSON was not written"; exit 1; }
# The same in a comparison: the report is written with every method, and the exit code names the failure.
rm -rf "$OUT/poisoned-compare"
KFAC_TEST_POISON_EVALUATION=1 "$KFAC" compare --model mlp --methods sgd,kfac --steps 2 --batch-size 16 \
  --eval-examples 16 --quiet --out "$OUT/poisoned-compare" > "$OUT/poisoned-compare.out" 2> "$OUT/poisoned-compare.err"
rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: a NaN evaluation in compare exited $rc, expected 2"; cat "$OUT/poisoned-compare.err"; exit 1; }
grep -q "trained model of sgd, kfac evaluates to a loss that is not finite" "$OUT/poisoned-compare.err" ||
  { echo "FAIL: compare's NaN evaluation message"; cat "$OUT/poisoned-compare.err"; exit 1; }
[ -s "$OUT/poisoned-compare/summary.md" ] || { echo "FAIL: compare's summary was not written"; exit 1; }
echo "PASS: non-finite loss stops the run"
