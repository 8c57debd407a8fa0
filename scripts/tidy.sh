#!/usr/bin/env bash
# Runs clang-tidy with the root .clang-tidy over the project's own sources (src/ and tools/ *.cpp), or over the
# .cpp files given as arguments; exits non-zero on any finding (WarningsAsErrors: '*').
# Usage: scripts/tidy.sh [FILE.cpp...]      (BUILD_DIR=build, JOBS=$(nproc) by default)
# Needs $BUILD_DIR/compile_commands.json; configuring is enough, no build:
#   cmake -S . -B build -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
# The precompiled headers GCC built (KFAC_USE_PCH) are unreadable to clang: a private copy of the compilation
# database includes their headers as plain text instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"; JOBS="${JOBS:-$(nproc)}"
DB="$BUILD_DIR/compile_commands.json"
[ -f "$DB" ] || { echo "tidy.sh: no $DB; run: cmake -S . -B $BUILD_DIR -DCMAKE_EXPORT_COMPILE_COMMANDS=ON" >&2; exit 2; }
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(git ls-files -- 'src/*.cpp' 'tools/*.cpp'); fi
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
# Copy each cmake_pch.hxx away from its .gch (clang would try to load the GCC .gch) and point -include at the copy.
{ grep -o -- '-include [^ "]*cmake_pch\.hxx' "$DB" || true; } | awk '{print $2}' | sort -u | while IFS= read -r h; do
  mkdir -p "$TMP/pch$(dirname "$h")" && cp "$h" "$TMP/pch$h"
done
sed -e "s#-include \(/[^ \"]*cmake_pch\.hxx\)#-include $TMP/pch\1#g" -e 's# -Winvalid-pch##g' "$DB" >"$TMP/compile_commands.json"
EXTRA=(-extra-arg=-Wno-error -extra-arg=-Wno-unknown-warning-option)  # compiler warnings are the build's business
if command -v run-clang-tidy-14 >/dev/null; then
  # run-clang-tidy takes regexes over the database's (absolute) paths: anchor and escape each file.
  regexes=()
  for f in "${files[@]}"; do regexes+=("^$(realpath "$f" | sed 's/[].[*^$()+?{}|\\]/\\&/g')\$"); done
  run-clang-tidy-14 -quiet -p "$TMP" -j "$JOBS" "${EXTRA[@]}" "${regexes[@]}"
else
  TIDY="$(command -v clang-tidy-14 || command -v clang-tidy)"
  printf '%s\0' "${files[@]}" | xargs -0 -n 1 -P "$JOBS" "$TIDY" -quiet -p "$TMP" "${EXTRA[@]}"
fi
