#!/usr/bin/env bash
# Skipped steps (a non-finite preconditioned direction or update: the weights stay) are counted in the progress line
# and the result line, and a run that skips too many stops with exit 2 and a message, keeping the last checkpoint:
# --max-skipped-steps in a row (default 10), or more than --max-skipped-fraction of --steps (default 0.5).
# A damping of 1e-300 added in the eigenbasis makes every K-FAC direction overflow, so every step is skipped.
set -u
KFAC="$1"; OUT="$2"
rm -rf "$OUT"; mkdir -p "$OUT"
run=(train --model mlp --method kfac --batch-size 32 --eval-examples 32 --damping-mode eigen)
expect() {  # expect MESSAGE COMMAND...: COMMAND fails with exit 2, and its stderr contains MESSAGE
  local message="$1"; shift
  "$@" > "$OUT/out" 2> "$OUT/err"
  local rc=$?
  [ "$rc" -eq 2 ] || { echo "FAIL: exit $rc (expected 2): $*"; cat "$OUT/err"; exit 1; }
  grep -qF -- "$message" "$OUT/err" || { echo "FAIL: expected '$message' from: $*"; cat "$OUT/err"; exit 1; }
  ! grep -q "train_loss" "$OUT/out" || { echo "FAIL: reported a result: $*"; exit 1; }
}

# Four good steps, then a resume whose every step is skipped: it stops after 10 and keeps the checkpoint of step 4.
"$KFAC" "${run[@]}" --quiet --steps 4 --checkpoint "$OUT/a.pt" > /dev/null || { echo "FAIL: first run"; exit 1; }
cp "$OUT/a.pt" "$OUT/good.pt"
expect "after 14 steps, the last 10 were all skipped (--max-skipped-steps 10); stopping. The last skipped step: " \
  "$KFAC" "${run[@]}" --steps 30 --damping 1e-300 --checkpoint "$OUT/a.pt" --resume --checkpoint-every 1
grep -qF "non-finite preconditioned direction" "$OUT/err" || { echo "FAIL: the reason"; cat "$OUT/err"; exit 1; }
grep -qF "The checkpoint '$OUT/a.pt' keeps step 4, the last one written" "$OUT/err" \
  || { echo "FAIL: the checkpoint kept"; cat "$OUT/err"; exit 1; }
grep -q "step 12/30 .* skipped 8 " "$OUT/err" || { echo "FAIL: the progress line's count"; cat "$OUT/err"; exit 1; }
cmp -s "$OUT/a.pt" "$OUT/good.pt" || { echo "FAIL: a checkpoint was written during the skipped steps"; exit 1; }

expect "after 3 steps, the last 3 were all skipped (--max-skipped-steps 3)" \
  "$KFAC" "${run[@]}" --quiet --steps 30 --damping 1e-300 --max-skipped-steps 3
expect "after 16 steps, 16 of the run's 30 steps were skipped, more than --max-skipped-fraction 0.5 allows" \
  "$KFAC" "${run[@]}" --quiet --steps 30 --damping 1e-300 --max-skipped-steps 0
grep -qF "No checkpoint was written" "$OUT/err" || { echo "FAIL: no checkpoint"; cat "$OUT/err"; exit 1; }

# Both limits off: the run finishes, and the result line counts the skipped steps.
"$KFAC" "${run[@]}" --quiet --steps 12 --damping 1e-300 --max-skipped-steps 0 --max-skipped-fraction 1 \
  > "$OUT/out" 2> "$OUT/err" || { echo "FAIL: limits off"; cat "$OUT/err"; exit 1; }
grep -qF "(12 steps, batch 32, lr 0.05, 12 skipped)" "$OUT/out" || { echo "FAIL: the result line"; cat "$OUT/out"; exit 1; }
echo "PASS: skipped steps"
