#!/usr/bin/env bash
# A flag that has no effect on the chosen method is named in a warning (issue 23, item 10); a flag that has one is not.
set -uo pipefail
KFAC=$1
DIR=$2
rm -rf "$DIR" && mkdir -p "$DIR"
COMMON=(--model mlp --steps 1 --batch-size 16 --eval-examples 32 --quiet)
warns() {  # message, flags...: the run succeeds and warns with the message
  local want=$1
  shift
  "$KFAC" train "${COMMON[@]}" "$@" >/dev/null 2>"$DIR/err" || { cat "$DIR/err"; echo "FAIL: $* failed"; exit 1; }
  grep -qF -- "kfac: warning: $want" "$DIR/err" || { cat "$DIR/err"; echo "FAIL: $*: expected '$want'"; exit 1; }
}
silent() {  # flags...: the run succeeds without a has-no-effect warning
  "$KFAC" train "${COMMON[@]}" "$@" >/dev/null 2>"$DIR/err" || { cat "$DIR/err"; echo "FAIL: $* failed"; exit 1; }
  if grep -q "has no effect" "$DIR/err"; then cat "$DIR/err"; echo "FAIL: $*: unexpected warning"; exit 1; fi
}
warns "--damping has no effect on adam: it is a preconditioner option" --method adam --damping 0.1
warns "--kl-clip has no effect on sgd" --method sgd --kl-clip 0.1
warns "--momentum has no effect on adamw" --method adamw --momentum 0.9
warns "--spectrum-period has no effect on kfac: it is an option of the ekfac block" --method kfac --spectrum-period 3
warns "--initial-lambda has no effect on kfac: it sets the quadratic model" --method kfac --initial-lambda 10
warns "--fallback-beta2 has no effect on kfac: it sets --fallback adam" --method kfac --fallback-beta2 0.9
warns "--eigenvalue-floor has no effect on kfac: the Cholesky inverse" --method kfac --inverse cholesky \
  --eigenvalue-floor 1e-6
warns "--coarse-weight has no effect on kfac: there is no global stage" --method kfac --coarse-weight 0.5
warns "--stats-positions has no effect on ekfac: it samples the positions" --method ekfac --stats-positions 8
silent --method ekfac --spectrum-period 3
silent --method ekfac --per-position-spectrum --stats-positions 8
silent --method kfac --stats-positions 8
silent --method kfac --fallback adam --fallback-beta2 0.9
silent --method kfac --inverse eigen --eigenvalue-floor 1e-6
silent --method sgd --momentum 0.5
echo "PASS: flag effects"
