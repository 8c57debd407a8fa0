#!/usr/bin/env bash
# --preset koroko takes its damping from the final --model, before or after it on the command line, and an
# explicit --damping still wins (issue 23, item 9: the preset used to read the model before --model was parsed).
set -uo pipefail
KFAC=$1
DIR=$2
rm -rf "$DIR" && mkdir -p "$DIR"
damping_of() {  # the flags: the damping the run's metrics JSON records
  "$KFAC" train "$@" --steps 1 --batch-size 16 --eval-examples 32 --quiet --metrics-json "$DIR/m.json" >/dev/null ||
    return 1
  /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["preconditioner_options"]["damping"]["damping"])' \
    "$DIR/m.json"
}
check() {  # expected, flags...
  local want=$1 got
  shift
  got=$(damping_of "$@")
  [ "$got" = "$want" ] || { echo "FAIL: $* recorded damping '$got', expected $want"; exit 1; }
}
check 0.0001 --preset koroko --model cnn
check 0.0001 --model cnn --preset koroko
check 1e-05 --preset koroko --model mlp
check 0.003 --model cnn --preset koroko --damping 0.003
echo "PASS: preset follows the model"
