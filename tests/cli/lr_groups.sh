#!/usr/bin/env bash
# The learning-rate schedule and the fallback parameters' own rate (issue 28, items 4 and 5): the schedule moves the
# trajectory, --fallback-lr is the rate of exactly the fallback parameters, and the combinations that cannot apply
# are refused by name.
set -uo pipefail
KFAC=$1
DIR=$2
rm -rf "$DIR" && mkdir -p "$DIR"
COMMON=(--model mlp --steps 3 --batch-size 32 --eval-examples 64 --quiet)
loss_of() {  # the flags: the final training loss the metrics JSON records
  "$KFAC" train "${COMMON[@]}" "$@" --metrics-json "$DIR/m.json" >/dev/null 2>"$DIR/err" || {
    cat "$DIR/err"
    return 1
  }
  /usr/bin/python3 -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))["train_loss"]))' "$DIR/m.json"
}
fail() { echo "FAIL: $*"; exit 1; }
refused() {  # expected message, flags...
  local want=$1
  shift
  if "$KFAC" train "${COMMON[@]}" "$@" >/dev/null 2>"$DIR/err"; then fail "$* was accepted"; fi
  grep -qF -- "$want" "$DIR/err" || { cat "$DIR/err"; fail "$*: expected '$want'"; }
}

# A warm-up changes the steps' rates, so the trajectory.
plain=$(loss_of --method sgd --lr 0.3) || fail "sgd"
warm=$(loss_of --method sgd --lr 0.3 --warmup-steps 3) || fail "sgd with warm-up"
[ "$plain" != "$warm" ] || fail "--warmup-steps 3 left the loss unchanged ($plain)"
cosine=$(loss_of --method sgd --lr 0.3 --lr-schedule cosine) || fail "sgd cosine"
[ "$plain" != "$cosine" ] || fail "--lr-schedule cosine left the loss unchanged ($plain)"

# fc1 excluded: its parameters form the fallback group. At the same rate the group changes nothing (bitwise); at
# another rate it moves the run.
same=$(loss_of --method kfac --exclude '^fc1$' --lr 0.05 --fallback-lr 0.05) || fail "fallback-lr = lr"
plain=$(loss_of --method kfac --exclude '^fc1$' --lr 0.05) || fail "no fallback-lr"
[ "$same" = "$plain" ] || fail "--fallback-lr equal to --lr gave $same, without it $plain"
other=$(loss_of --method kfac --exclude '^fc1$' --lr 0.05 --fallback-lr 0.01) || fail "fallback-lr 0.01"
[ "$other" != "$plain" ] || fail "--fallback-lr 0.01 left the loss unchanged ($plain)"
/usr/bin/python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); assert (m["lr"], m["fallback_lr"]) == (0.05, 0.01), m' \
  "$DIR/m.json" || fail "the metrics JSON does not record the fallback rate"

refused "--fallback-lr sets the rate of a K-FAC method's fallback parameters and of Muon's AdamW group; sgd has one \
rate (use --lr)" --method sgd --fallback-lr 0.1
# Muon: --fallback-lr is its AdamW group's rate (embeddings, the head, vectors), 1e-3 unless given.
same=$(loss_of --method muon --fallback-lr 1e-3) || fail "muon fallback-lr 1e-3"
plain=$(loss_of --method muon) || fail "muon"
[ "$same" = "$plain" ] || fail "muon: --fallback-lr 1e-3 gave $same, the default $plain"
other=$(loss_of --method muon --fallback-lr 1e-2) || fail "muon fallback-lr 1e-2"
[ "$other" != "$plain" ] || fail "muon: --fallback-lr 1e-2 left the loss unchanged ($plain)"
refused "--step-rule qmodel chooses its own step sizes" --method kfac --step-rule qmodel --lr-schedule cosine
refused "--warmup-steps must be in [0, --steps 3], got 5" --method sgd --warmup-steps 5
echo "PASS: lr schedule and groups"
