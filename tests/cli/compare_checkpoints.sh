#!/usr/bin/env bash
# kfac compare --checkpoint F: each method writes its own checkpoint (F with the method's name before the extension)
# and the report is written (issue 23, item 5: the second method used to refuse the first one's file); a second run
# without --overwrite is refused before anything trains, naming the first existing file.
set -uo pipefail
KFAC=$1
DIR=$2
rm -rf "$DIR" && mkdir -p "$DIR"
run() {  # report folder
  "$KFAC" compare --model mlp --methods sgd,kfac --steps 2 --batch-size 16 --eval-examples 32 --quiet \
    --checkpoint "$DIR/run.pt" --out "$DIR/$1"
}
run report >"$DIR/first.log" 2>&1 || { cat "$DIR/first.log"; echo "FAIL: the comparison did not finish"; exit 1; }
for f in run.sgd.pt run.kfac.pt report/summary.md; do
  [ -s "$DIR/$f" ] || { echo "FAIL: $f missing"; exit 1; }
done
if run report2 >"$DIR/second.log" 2>&1; then
  echo "FAIL: an existing checkpoint was not refused"
  exit 1
fi
grep -q "run.sgd.pt" "$DIR/second.log" || { cat "$DIR/second.log"; echo "FAIL: the refusal does not name the file"; exit 1; }
[ ! -e "$DIR/report2/sgd.json" ] || { echo "FAIL: a run trained before the refusal"; exit 1; }
echo "PASS: compare checkpoints"
