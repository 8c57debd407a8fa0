#!/usr/bin/env bash
# Checkpoints are verified and resume says what it does: a flipped byte is refused naming the record, a resume with a
# changed training option is refused naming it, a target below the checkpoint's step is refused, an existing checkpoint
# is only replaced with --overwrite, and an unwritable destination fails before step 1 and leaves no .tmp behind.
set -u
KFAC="$1"; OUT="$2"
rm -rf "$OUT"; mkdir -p "$OUT"
run=(train --model mlp --method kfac --batch-size 32 --eval-examples 32 --quiet)
expect() {  # expect MESSAGE COMMAND...: COMMAND fails, and its stderr contains MESSAGE
  local message="$1"; shift
  if "$@" > /dev/null 2> "$OUT/err"; then echo "FAIL: succeeded: $*"; exit 1; fi
  grep -qF -- "$message" "$OUT/err" || { echo "FAIL: expected '$message' from: $*"; cat "$OUT/err"; exit 1; }
}
"$KFAC" "${run[@]}" --steps 4 --checkpoint "$OUT/a.pt" > /dev/null || { echo "FAIL: first run"; exit 1; }
expect "already exists; continue that run with --resume, or replace it with --overwrite" \
  "$KFAC" "${run[@]}" --steps 4 --checkpoint "$OUT/a.pt"
"$KFAC" "${run[@]}" --steps 4 --checkpoint "$OUT/a.pt" --overwrite > /dev/null || { echo "FAIL: --overwrite"; exit 1; }
expect "is at step 4, beyond --steps 2; give --steps 4 or more" "$KFAC" "${run[@]}" --steps 2 --checkpoint "$OUT/a.pt" --resume
expect "--lr: default in the checkpoint, 0.5 now" "$KFAC" "${run[@]}" --steps 6 --lr 0.5 --checkpoint "$OUT/a.pt" --resume
expect "--seed: 0 in the checkpoint, 7 now" "$KFAC" "${run[@]}" --steps 6 --seed 7 --checkpoint "$OUT/a.pt" --resume
# Numbers in the shortest form that reads back (0.05, not 0.050000000000000003).
"$KFAC" "${run[@]}" --steps 4 --lr 0.05 --checkpoint "$OUT/n.pt" > /dev/null || { echo "FAIL: --lr 0.05 run"; exit 1; }
expect "--lr: 0.05 in the checkpoint, 0.1 now" "$KFAC" "${run[@]}" --steps 6 --lr 0.1 --checkpoint "$OUT/n.pt" --resume

# One flipped bit in the middle of the file (inside a tensor record).
cp "$OUT/a.pt" "$OUT/b.pt"
offset=$(( $(stat -c %s "$OUT/b.pt") / 2 ))
byte=$(od -An -tu1 -j "$offset" -N1 "$OUT/b.pt" | tr -d ' ')
printf "\\$(printf %o $(( byte ^ 1 )))" | dd of="$OUT/b.pt" bs=1 seek="$offset" conv=notrunc status=none
expect "is damaged (record '" "$KFAC" "${run[@]}" --steps 6 --checkpoint "$OUT/b.pt" --resume
grep -q "does not match its CRC-32" "$OUT/err" || { echo "FAIL: the record's CRC"; cat "$OUT/err"; exit 1; }
"$KFAC" "${run[@]}" --steps 6 --checkpoint "$OUT/a.pt" --resume > /dev/null || { echo "FAIL: the intact copy resumes"; exit 1; }

start=$(date +%s)
expect "cannot write --checkpoint '$OUT/missing/c.pt' (No such file or directory); check that its folder exists" "$KFAC" "${run[@]}" --steps 100000 --checkpoint "$OUT/missing/c.pt"
expect "--checkpoint '$OUT' is a directory, not a regular file; give a file name" "$KFAC" "${run[@]}" --steps 100000 --checkpoint "$OUT"
[ $(( $(date +%s) - start )) -lt 30 ] || { echo "FAIL: the destination was not checked before training"; exit 1; }
[ ! -e "$OUT/missing" ] && [ ! -e "$OUT.tmp" ] || { echo "FAIL: left something behind"; exit 1; }
echo "PASS: checkpoint checks"
