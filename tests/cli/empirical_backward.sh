#!/usr/bin/env bash
# The empirical Fisher from the training backward (issue 28, item 1): with --fisher empirical on the whole batch the
# tool captures the statistics from the loss's own backward, with no statistics pass. They are the statistics of a
# separate pass over the same examples (--stats-fraction 0.9999 keeps ceil(0.9999·B) = B examples but runs the pass),
# so both runs train alike to float32 rounding, for a loss over examples (mlp) and one per position (char-lm); the
# sampled Fisher is the negative control.
set -uo pipefail
KFAC=$1
DIR=$2
rm -rf "$DIR" && mkdir -p "$DIR"
fail() { echo "FAIL: $*"; exit 1; }
loss_of() {  # flags: the final training loss the metrics JSON records
  "$KFAC" train --steps 4 --eval-examples 64 --quiet --method kfac "$@" --metrics-json "$DIR/m.json" >/dev/null \
    2>"$DIR/err" || {
    cat "$DIR/err"
    return 1
  }
  /usr/bin/python3 -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))["train_loss"]))' "$DIR/m.json"
}
close() {  # a b: relative difference below 1e-4
  /usr/bin/python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-4 * abs(b))' "$1" "$2"
}

for model in "--model mlp --batch-size 32" "--model char-lm --dataset kjv --batch-size 8"; do
  read -ra M <<<"$model"
  hooked=$(loss_of "${M[@]}" --fisher empirical) || fail "$model: empirical from the training backward"
  pass=$(loss_of "${M[@]}" --fisher empirical --stats-fraction 0.9999) || fail "$model: empirical by a pass"
  sampled=$(loss_of "${M[@]}" --fisher sampled) || fail "$model: sampled"
  close "$hooked" "$pass" || fail "$model: training backward $hooked, separate pass $pass"
  close "$hooked" "$sampled" && fail "$model: the sampled Fisher trained alike ($sampled, empirical $hooked)"
done
echo "PASS: empirical Fisher from the training backward"
