#!/usr/bin/env bash
# Configures and builds the project into build/ (Release, Ninja, ccache). Runs setup first if anything is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# The precompiled headers need these for ccache hits.
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
export CCACHE_BASEDIR="$PWD"  # relative paths in the cache key: clones in other folders hit the same cache
BUILD_DIR="${BUILD_DIR:-build}"
# KFAC_WERROR unset keeps what the build folder was configured with (switching it rebuilds everything).
CACHED_WERROR="$(sed -n 's/^KFAC_WERROR:BOOL=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)"
KFAC_WERROR="${KFAC_WERROR:-${CACHED_WERROR:-OFF}}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DKFAC_BUILD_TESTS=ON -DKFAC_BUILD_TOOLS=ON -DKFAC_BUILD_BENCH="${KFAC_BUILD_BENCH:-OFF}" \
  -DKFAC_PYTHON="${KFAC_PYTHON:-ON}" -DPython3_EXECUTABLE=/usr/bin/python3 \
  -DKFAC_WERROR="$KFAC_WERROR" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
