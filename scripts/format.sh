#!/usr/bin/env bash
# Formats the project's C++ with clang-format and the root .clang-format (tuned for clang-format 14).
# Usage: scripts/format.sh            rewrite every tracked *.cpp / *.h in place (tests/fuzz/corpus excluded)
#        scripts/format.sh --check    print the files that would change; exit 1 if any, 0 if none
# Uses clang-format-14, else clang-format. Installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT="$(command -v clang-format-14 || command -v clang-format || true)"
[ -n "$CLANG_FORMAT" ] || { echo "format.sh: clang-format not found (apt-get install clang-format-14)" >&2; exit 2; }
case "${1:-}" in
  "") check=0 ;;
  --check) check=1 ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac
status=0
while IFS= read -r -d '' f; do
  if [ "$check" = 1 ]; then
    "$CLANG_FORMAT" --style=file --fallback-style=none "$f" | cmp -s - "$f" || { echo "$f"; status=1; }
  else
    "$CLANG_FORMAT" --style=file --fallback-style=none -i "$f"
  fi
done < <(git ls-files -z -- '*.cpp' '*.h' ':!:tests/fuzz/corpus/*')
exit "$status"
