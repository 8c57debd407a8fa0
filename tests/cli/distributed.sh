#!/usr/bin/env bash
# `kfac train --nproc N`: local ranks match one process, a checkpoint taken on 2 ranks resumes on 3, and a rank killed
# mid-run makes the others stop with the timeout error (never a hang).
set -u
KFAC="$1"; OUT="$2"
source "$(dirname "$0")/lib.sh"
mkdir -p "$OUT"; rm -f "$OUT"/*.pt
common=(train --model mlp --method kfac --fisher exact --batch-size 30 --eval-examples 200 --quiet --threads 1)
loss() { grep -o 'train_loss [0-9.e+-]*' | cut -d' ' -f2; }
one=$("$KFAC" "${common[@]}" --steps 6 | loss)
two=$("$KFAC" "${common[@]}" --steps 6 --nproc 2 | loss)
"$KFAC" "${common[@]}" --steps 3 --nproc 2 --checkpoint "$OUT/dist.pt" >/dev/null || { echo "FAIL: 2-rank run"; exit 1; }
resumed=$("$KFAC" "${common[@]}" --steps 6 --nproc 3 --checkpoint "$OUT/dist.pt" --resume | loss)
echo "train loss: 1 process $one, 2 ranks $two, 2 ranks then resumed on 3 $resumed"
# awk (part of every Debian system) for the arithmetic
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a; exit !(d <= 1e-4 * m) }'; }
close "$one" "$two" || { echo "FAIL: 2 ranks differ from one process"; exit 1; }
close "$one" "$resumed" || { echo "FAIL: resumed on 3 ranks differs"; exit 1; }

start=$(date +%s.%N)
KFAC_TEST_KILL_RANK=1 KFAC_TEST_KILL_STEP=2 "$KFAC" "${common[@]}" --steps 1000 --nproc 3 --dist-timeout 5 \
  2>"$OUT/fault.err" >/dev/null
rc=$?
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
cat "$OUT/fault.err"
[ "$rc" -ne 0 ] || { echo "FAIL: a killed rank must fail the run"; exit 1; }
grep -q "rank 1 of 3 was killed by signal 9" "$OUT/fault.err" || { echo "FAIL: launcher message"; exit 1; }
grep -q "distributed .* failed on rank" "$OUT/fault.err" || { echo "FAIL: the other ranks' error"; exit 1; }
awk -v t="$elapsed" 'BEGIN { exit !(t <= 5 + 10) }' || { echo "FAIL: took $elapsed s"; exit 1; }
# Ctrl-C sent to the launcher alone reaches every rank: one checkpoint, exit 130, and --resume on 2 ranks finishes.
rm -f "$OUT/int.pt"
interrupt_after 4 "$OUT/int.err" "$KFAC" "${common[@]}" --steps 100000 --nproc 2 --checkpoint "$OUT/int.pt"
[ "$rc" -eq 130 ] || { echo "FAIL: interrupted run exited with $rc, expected 130"; exit 1; }
step=$(grep -o 'after step [0-9]*' "$OUT/int.err" | grep -o '[0-9]*')
[ "$(grep -c 'interrupted after step' "$OUT/int.err")" -eq 1 ] || { echo "FAIL: one message expected"; exit 1; }
"$KFAC" "${common[@]}" --steps $((step + 2)) --nproc 2 --checkpoint "$OUT/int.pt" --resume >/dev/null \
  || { echo "FAIL: resume after Ctrl-C"; exit 1; }
echo "PASS: distributed (rank failure reported after $elapsed s, timeout 5 s; Ctrl-C at step $step, resumed)"
