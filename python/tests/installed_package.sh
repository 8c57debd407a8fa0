#!/usr/bin/env bash
# cmake --install puts an importable kfac package under the prefix, at KFAC_PYTHON_INSTALL_DIR.
# Usage: installed_package.sh CMAKE BUILD_DIR PREFIX PYTHON_INSTALL_DIR PYTHON
set -euo pipefail
cmake="$1" build="$2" prefix="$3" dir="$4" python="$5"
rm -rf "$prefix"
"$cmake" --install "$build" --prefix "$prefix" >/dev/null
cd /  # away from the build tree, so that only the installed package can be imported
PYTHONPATH="$prefix/$dir" "$python" -c "
import kronfac, torch
assert kronfac.__file__.startswith('$prefix/'), kronfac.__file__
print(kronfac.Preconditioner(torch.nn.Linear(2, 2)), 'from', kronfac.__file__)"
