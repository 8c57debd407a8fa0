#!/usr/bin/env bash
# The project's test command: installs what is missing, builds, and runs the whole suite under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The microbenchmarks are built too (not run), so that they keep compiling against the library.
KFAC_BUILD_BENCH="${KFAC_BUILD_BENCH:-ON}" bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)"
