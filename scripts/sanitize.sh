#!/usr/bin/env bash
# The unit tests under AddressSanitizer and UndefinedBehaviorSanitizer: the library and the test binary are built
# with -fsanitize=address,undefined into build-asan/ (LibTorch itself is not instrumented), and every unit test runs
# with leak detection on, UBSan fatal. Suppressions: tests/sanitizers/lsan.supp (LibTorch's leaks only).
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD_DIR="${SANITIZE_BUILD_DIR:-build-asan}"
# Set before the build too: listing the tests (gtest_discover_tests) runs the instrumented binary.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# -O2 with assertions on and no debug information: debug information holds the checkout's path, which would keep
# ccache from hitting in a clone elsewhere (it reaches the precompiled header). The reports name functions; rebuild
# with -DCMAKE_BUILD_TYPE=RelWithDebInfo for line numbers. Neither the tool nor the Python module is built.
KFAC_PYTHON=OFF bash scripts/build.sh -DKFAC_SANITIZE=address,undefined -DKFAC_BUILD_TOOLS=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE=-O2
cd "$BUILD_DIR"
# Device.* needs CUDA; FindPackage.* links an outside project against the installed library, which needs the same
# -fsanitize flags (the build-flags target is deliberately not exported; the Release run covers packaging).
ctest --output-on-failure -j "$(nproc)" -E '^(Device|FindPackage)\.'
