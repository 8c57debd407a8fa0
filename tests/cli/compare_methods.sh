#!/usr/bin/env bash
# `kfac compare` checks every method before the first one trains (issue 23, item 12): an unknown name fails at once,
# naming the baselines too; spaces around names are ignored; a method named twice is refused.
set -uo pipefail
KFAC=$1
DIR=$2
rm -rf "$DIR" && mkdir -p "$DIR"
fail() { echo "FAIL: $*"; exit 1; }
COMMON=(--model mlp --steps 1 --batch-size 16 --eval-examples 32 --quiet --out "$DIR/report")
if "$KFAC" compare --methods sgd,kfac,bogus "${COMMON[@]}" >/dev/null 2>"$DIR/err"; then fail "bogus was accepted"; fi
grep -qF "unknown method 'bogus'; valid methods: sgd, adam, adamw, muon, shampoo, soap, kfac, ekfac, tkfac, tekfac" "$DIR/err" ||
  { cat "$DIR/err"; fail "the message does not list every method"; }
[ ! -e "$DIR/report/sgd.json" ] || fail "sgd trained before the unknown method was refused"
if "$KFAC" compare --methods "sgd,kfac+residul" "${COMMON[@]}" >/dev/null 2>"$DIR/err"; then fail "residul accepted"; fi
grep -qF "residul" "$DIR/err" || { cat "$DIR/err"; fail "the bad coarse space is not named"; }
[ ! -e "$DIR/report/sgd.json" ] || fail "sgd trained before the bad global stage was refused"
if "$KFAC" compare --methods "sgd,sgd" "${COMMON[@]}" >/dev/null 2>"$DIR/err"; then fail "sgd twice accepted"; fi
grep -qF "names 'sgd' twice" "$DIR/err" || { cat "$DIR/err"; fail "the duplicate is not named"; }
"$KFAC" compare --methods " sgd, kfac " "${COMMON[@]}" >/dev/null 2>"$DIR/err" || { cat "$DIR/err"; fail "spaces"; }
[ -e "$DIR/report/sgd.json" ] && [ -e "$DIR/report/kfac.json" ] || fail "the trimmed methods did not run"
echo "PASS: compare methods"
