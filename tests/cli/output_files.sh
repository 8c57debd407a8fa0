#!/usr/bin/env bash
# Every file the tool writes replaces only a regular file, and every write is checked:
#  * a --checkpoint, --metrics-json or report file that is a fifo, a folder or a link to one is refused before
#    training, naming the option and the path, and is left as it was (fifos and folders stand for devices: the tests
#    never write to a real one);
#  * --checkpoint and --metrics-json naming the same file are refused; --metrics-json - writes the JSON alone to stdout;
#  * a full disk (KFAC_TEST_DISK_FULL=1 sends the bytes of every write to /dev/full, ENOSPC) is an error naming the
#    file, exit 2 and no abort, with the previous checkpoint intact and no .tmp left behind.
set -u
KFAC="$1"; OUT="$2"
rm -rf "$OUT"; mkdir -p "$OUT"
run=(train --model mlp --method kfac --batch-size 32 --eval-examples 32 --quiet)
expect() {  # expect MESSAGE COMMAND...: COMMAND fails with exit 2 (not by training for minutes), stderr has MESSAGE
  local message="$1"; shift
  timeout 120 "$@" > "$OUT/out" 2> "$OUT/err"
  local rc=$?
  [ "$rc" -eq 2 ] || { echo "FAIL: exit $rc (expected 2): $*"; cat "$OUT/err"; exit 1; }
  grep -qF -- "$message" "$OUT/err" || { echo "FAIL: expected '$message' from: $*"; cat "$OUT/err"; exit 1; }
}

mkfifo "$OUT/fifo"; mkdir "$OUT/folder"
ln -s "$OUT/fifo" "$OUT/to_fifo"; ln -s "$OUT/folder" "$OUT/to_folder"
start=$(date +%s)
expect "--checkpoint '$OUT/fifo' is a fifo (named pipe), not a regular file" \
  "$KFAC" "${run[@]}" --steps 100000 --checkpoint "$OUT/fifo" --overwrite
expect "--checkpoint '$OUT/to_fifo' is a symbolic link to a fifo (named pipe) ('$OUT/fifo'), not a regular file" \
  "$KFAC" "${run[@]}" --steps 100000 --checkpoint "$OUT/to_fifo" --overwrite
expect "--checkpoint '$OUT/folder' is a directory, not a regular file" \
  "$KFAC" "${run[@]}" --steps 100000 --checkpoint "$OUT/folder" --overwrite
expect "--metrics-json '$OUT/fifo' is a fifo (named pipe), not a regular file" \
  "$KFAC" "${run[@]}" --steps 100000 --metrics-json "$OUT/fifo"
expect "--metrics-json '$OUT/to_folder' is a symbolic link to a directory" \
  "$KFAC" "${run[@]}" --steps 100000 --metrics-json "$OUT/to_folder"
expect "--checkpoint '$OUT/same' and --metrics-json '$OUT/same' name the same file" \
  "$KFAC" "${run[@]}" --steps 100000 --checkpoint "$OUT/same" --metrics-json "$OUT/same"
mkdir "$OUT/report"; mkfifo "$OUT/report/adam.csv"
expect "--out '$OUT/report/adam.csv' is a fifo (named pipe), not a regular file" \
  "$KFAC" compare --model mlp --methods sgd,adam --steps 100000 --batch-size 32 --quiet --out "$OUT/report"
expect "--out '$OUT/fifo' is not a folder" \
  "$KFAC" compare --model mlp --methods sgd --steps 100000 --batch-size 32 --quiet --out "$OUT/fifo"
[ $(( $(date +%s) - start )) -lt 60 ] || { echo "FAIL: the outputs were not checked before training"; exit 1; }
[ -p "$OUT/fifo" ] && [ -p "$OUT/report/adam.csv" ] && [ -L "$OUT/to_fifo" ] && [ -L "$OUT/to_folder" ] \
  && [ -d "$OUT/folder" ] && [ -z "$(ls -A "$OUT/folder")" ] || { echo "FAIL: a refused target was changed"; exit 1; }
[ -z "$(ls "$OUT" "$OUT/report" | grep -F .tmp)" ] && [ ! -e "$OUT/report/sgd.json" ] \
  || { echo "FAIL: left something behind"; ls -lR "$OUT"; exit 1; }

# "-": the JSON alone on standard output, the result line on standard error.
"$KFAC" "${run[@]}" --steps 2 --metrics-json - > "$OUT/stdout.json" 2> "$OUT/err" || { echo "FAIL: --metrics-json -"; exit 1; }
/usr/bin/python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["steps"] == 2' "$OUT/stdout.json" \
  || { echo "FAIL: stdout is not the JSON"; cat "$OUT/stdout.json"; exit 1; }
grep -q "kfac mlp: train_loss" "$OUT/err" || { echo "FAIL: the result line"; cat "$OUT/err"; exit 1; }

# A full disk: the checkpoint of step 2 survives a resume that cannot save, and a metrics file is not left empty.
"$KFAC" "${run[@]}" --steps 2 --checkpoint "$OUT/a.pt" > /dev/null || { echo "FAIL: first run"; exit 1; }
cp "$OUT/a.pt" "$OUT/a.pt.good"
expect "cannot write '$OUT/a.pt' (No space left on device); '$OUT/a.pt' keeps its previous contents" \
  env KFAC_TEST_DISK_FULL=1 "$KFAC" "${run[@]}" --steps 4 --checkpoint "$OUT/a.pt" --resume
! grep -q "terminate called" "$OUT/err" || { echo "FAIL: aborted"; cat "$OUT/err"; exit 1; }
cmp -s "$OUT/a.pt" "$OUT/a.pt.good" || { echo "FAIL: the previous checkpoint changed"; exit 1; }
expect "cannot write '$OUT/m.json' (No space left on device); nothing was written" \
  env KFAC_TEST_DISK_FULL=1 "$KFAC" "${run[@]}" --steps 2 --metrics-json "$OUT/m.json"
[ ! -e "$OUT/a.pt.tmp" ] && [ ! -e "$OUT/m.json" ] && [ ! -e "$OUT/m.json.tmp" ] \
  || { echo "FAIL: left a file behind"; ls -l "$OUT"; exit 1; }
"$KFAC" "${run[@]}" --steps 4 --checkpoint "$OUT/a.pt" --resume > /dev/null || { echo "FAIL: resume after"; exit 1; }
echo "PASS: output files"
