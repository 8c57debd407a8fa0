#!/usr/bin/env bash
# `kfac compare --out` takes any folder name as a name: quotes, `$(...)`, spaces and a newline run nothing, and the
# report (plots included) lands in that folder.
set -u
KFAC="$1"; OUT="$2"
rm -rf "$OUT"; mkdir -p "$OUT"; cd "$OUT"
dir=$'r x"; touch PWNED1; "\'$(touch PWNED2)`touch PWNED3`\nline'
"$KFAC" compare --model mlp --methods sgd --steps 2 --batch-size 16 --eval-examples 16 --quiet --out "$dir" \
  > /dev/null 2> err.txt || { echo "FAIL: compare exited $?"; cat err.txt; exit 1; }
for f in PWNED1 PWNED2 PWNED3; do
  [ ! -e "$f" ] && [ ! -e "$dir/$f" ] || { echo "FAIL: an injected command ran ($f exists)"; exit 1; }
done
for f in summary.md sgd.json loss_vs_step.png; do
  [ -s "$dir/$f" ] || { echo "FAIL: $f missing in the quoted folder"; cat err.txt; exit 1; }
done
echo "PASS: no shell"
