#!/usr/bin/env bash
# An invalid OMP_NUM_THREADS is refused by name before LibTorch answers it with a backtrace (issue 23, item 15).
set -uo pipefail
KFAC=$1
DIR=$2
rm -rf "$DIR" && mkdir -p "$DIR"
for bad in -3 0 two; do
  OMP_NUM_THREADS=$bad "$KFAC" info >/dev/null 2>"$DIR/err"
  rc=$?
  [ "$rc" = 2 ] || { cat "$DIR/err"; echo "FAIL: OMP_NUM_THREADS=$bad exited $rc, not 2"; exit 1; }
  grep -qF "OMP_NUM_THREADS='$bad' is not a whole number >= 1" "$DIR/err" ||
    { cat "$DIR/err"; echo "FAIL: OMP_NUM_THREADS=$bad is not named"; exit 1; }
  if grep -q "frame #" "$DIR/err"; then cat "$DIR/err"; echo "FAIL: a backtrace for OMP_NUM_THREADS=$bad"; exit 1; fi
done
OMP_NUM_THREADS=1 "$KFAC" info >/dev/null 2>"$DIR/err" || { cat "$DIR/err"; echo "FAIL: OMP_NUM_THREADS=1"; exit 1; }
echo "PASS: environment"
