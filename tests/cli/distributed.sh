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
# The optimizers one would pick instead (the tool averages their gradients): 2 ranks equal 1 process, and SOAP's
# state (moments, factors, bases, counters) saved on 2 ranks resumes on 3. Equal to rounding amplified: the shards'
# averaged gradient rounds differently from the whole batch's, and Adam's m / (√v + ε) turns the rounding noise of a
# coordinate without gradient into a step of size ~lr (SOAP's eigenbasis has hundreds of such coordinates when the
# batch of 30 is narrower than the 256- and 784-wide factors).
close() { awk -v a="$1" -v b="$2" -v r="${3:-1e-4}" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a; exit !(d <= r * m) }'; }
for method in muon shampoo soap; do
  m=(train --model mlp --method "$method" --batch-size 30 --eval-examples 200 --quiet --threads 1)
  [ "$method" = muon ] || m+=(--precondition-frequency 2)
  one=$("$KFAC" "${m[@]}" --steps 6 | loss)
  two=$("$KFAC" "${m[@]}" --steps 6 --nproc 2 | loss)
  echo "$method train loss: 1 process $one, 2 ranks $two"
  close "$one" "$two" 2e-3 || { echo "FAIL: $method on 2 ranks differs from one process"; exit 1; }
done
"$KFAC" "${m[@]}" --steps 3 --nproc 2 --checkpoint "$OUT/soap.pt" >/dev/null || { echo "FAIL: 2-rank soap run"; exit 1; }
resumed=$("$KFAC" "${m[@]}" --steps 6 --nproc 3 --checkpoint "$OUT/soap.pt" --resume | loss)
close "$one" "$resumed" 2e-3 || { echo "FAIL: soap resumed on 3 ranks differs ($resumed vs $one)"; exit 1; }

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
interrupt_after "$OUT/int.pt" "$OUT/int.err" INT "$KFAC" "${common[@]}" --steps 100000 --nproc 2 --checkpoint "$OUT/int.pt" \
  --checkpoint-every 1
[ "$rc" -eq 130 ] || { echo "FAIL: interrupted run exited with $rc, expected 130"; exit 1; }
step=$(grep -o 'after step [0-9]*' "$OUT/int.err" | grep -o '[0-9]*')
[ "$(grep -c 'interrupted after step' "$OUT/int.err")" -eq 1 ] || { echo "FAIL: one message expected"; exit 1; }
"$KFAC" "${common[@]}" --steps $((step + 2)) --nproc 2 --checkpoint "$OUT/int.pt" --resume >/dev/null \
  || { echo "FAIL: resume after Ctrl-C"; exit 1; }
# SIGTERM to the launcher alone is forwarded and every rank checkpoints, as for Ctrl-C.
rm -f "$OUT/term.pt"
interrupt_after "$OUT/term.pt" "$OUT/term.err" TERM "$KFAC" "${common[@]}" --steps 100000 --nproc 2 \
  --checkpoint "$OUT/term.pt" --checkpoint-every 1 > /dev/null
[ "$rc" -eq 130 ] && grep -q "checkpoint written to" "$OUT/term.err" || { echo "FAIL: SIGTERM: exit $rc"; cat "$OUT/term.err"; exit 1; }
# SIGKILL to the launcher: its ranks get SIGTERM (parent-death signal) and are gone within 5 s, far below the
# 60 s --dist-timeout they would otherwise wait (2 s was once too short on 2 loaded cores: Gloo's teardown).
"$KFAC" "${common[@]}" --steps 100000 --nproc 2 2>"$OUT/kill.err" >/dev/null &
launcher=$!
tries=0; while (( tries++ < 600 )) && [ "$(children "$launcher" | wc -l)" -lt 2 ]; do sleep 0.1; done
ranks=$(children "$launcher")
sleep 1  # while they join the process group or train: either way they must go
kill -KILL "$launcher"; wait "$launcher" 2>/dev/null
alive() { for k in $ranks; do [ -e "/proc/$k" ] && ! grep -q '^State:.*Z' "/proc/$k/status" 2>/dev/null && echo "$k"; done; }
tries=0; while (( tries++ < 50 )) && [ -n "$(alive)" ]; do sleep 0.1; done
left=$(alive)
[ -z "$left" ] || { echo "FAIL: rank(s) $left outlived their killed launcher by 5 s"; kill -KILL $ranks 2>/dev/null; exit 1; }
echo "PASS: distributed (rank failure reported after $elapsed s, timeout 5 s; Ctrl-C at step $step, resumed; SIGTERM checkpoints; ranks end with their launcher)"
