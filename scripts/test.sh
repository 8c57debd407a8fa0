#!/usr/bin/env bash
# The project's test command: installs what is missing, builds, and runs the whole suite under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)"
