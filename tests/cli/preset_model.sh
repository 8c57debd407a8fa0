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
# The transformer presets: their model, method and schedule (no warm-up), and explicit flags over them.
field_of() {  # python expression over the metrics JSON m, flags...
  local expr=$1
  shift
  "$KFAC" train "$@" --batch-size 8 --eval-examples 16 --quiet --metrics-json "$DIR/t.json" >/dev/null || return 1
  /usr/bin/python3 -c "import json, sys; m = json.load(open(sys.argv[1])); print(repr(($expr,)))" "$DIR/t.json"
}
got=$(field_of 'm["model"], m["method"], m["preconditioner_options"]["schedule"]["stats_period"], m["warmup_steps"], m["preconditioner_options"]["ekfac"]["per_position_spectrum"]' \
  --preset char-lm-kfac --steps 20)
[ "$got" = "('char-lm', 'ekfac', 10, 0, True)" ] || { echo "FAIL: --preset char-lm-kfac --steps 20 recorded $got"; exit 1; }
got=$(field_of 'm["preconditioner_options"]["ekfac"]["per_position_spectrum"]' --preset char-lm-kfac --steps 2 \
  --no-per-position-spectrum)
[ "$got" = "(False,)" ] || { echo "FAIL: --no-per-position-spectrum after the preset gave $got"; exit 1; }
got=$(field_of 'm["warmup_steps"], m["preconditioner_options"]["schedule"]["stats_period"]' --steps 20 --warmup-steps 4 \
  --preset char-lm-kfac --stats-period 5)
[ "$got" = "(4, 5)" ] || { echo "FAIL: explicit --warmup-steps 4 and --stats-period 5 gave $got"; exit 1; }
got=$(field_of 'm["model"], m["method"], m["kl_clip"]' --preset vit-kfac --steps 2)
[ "$got" = "('vit', 'kfac', 0.0003)" ] || { echo "FAIL: --preset vit-kfac recorded $got"; exit 1; }
echo "PASS: preset follows the model"
