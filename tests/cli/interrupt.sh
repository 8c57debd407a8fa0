#!/usr/bin/env bash
# Ctrl-C during `kfac train` writes a checkpoint and exits 130; --resume then finishes the run.
set -u
KFAC="$1"; OUT="$2"
source "$(dirname "$0")/lib.sh"
mkdir -p "$OUT"; rm -f "$OUT/interrupt.pt"
args=(train --model mlp --method ekfac --steps 100000 --batch-size 64 --eval-examples 100 --quiet --checkpoint "$OUT/interrupt.pt"
      --checkpoint-every 1)
interrupt_after "$OUT/interrupt.pt" "$OUT/interrupt.err" INT "$KFAC" "${args[@]}"
[ "$rc" -eq 130 ] || { echo "FAIL: exit code $rc, expected 130"; exit 1; }
grep -q "checkpoint written to '$OUT/interrupt.pt'; continue with --resume" "$OUT/interrupt.err" || { echo "FAIL: message"; exit 1; }
[ -s "$OUT/interrupt.pt" ] && [ ! -e "$OUT/interrupt.pt.tmp" ] || { echo "FAIL: checkpoint missing or partial"; exit 1; }
step=$(grep -o 'after step [0-9]*' "$OUT/interrupt.err" | grep -o '[0-9]*')
"$KFAC" train --model mlp --method ekfac --steps $((step + 2)) --batch-size 64 --eval-examples 100 --quiet \
  --checkpoint "$OUT/interrupt.pt" --resume || { echo "FAIL: resume"; exit 1; }
# SIGTERM and SIGHUP are handled like Ctrl-C.
for sig in TERM HUP; do
  rm -f "$OUT/$sig.pt"
  interrupt_after "$OUT/$sig.pt" "$OUT/$sig.err" "$sig" "$KFAC" "${args[@]/$OUT\/interrupt.pt/$OUT/$sig.pt}" > /dev/null
  [ "$rc" -eq 130 ] && grep -q "checkpoint written to '$OUT/$sig.pt'" "$OUT/$sig.err" || { echo "FAIL: SIG$sig: exit $rc"; exit 1; }
done
echo "PASS: interrupted after step $step, resumed"
