#!/usr/bin/env bash
# `pip install --no-build-isolation .` into a fresh venv that sees the system's packages (Debian's python3-torch), as
# the README says; then, from outside the tree, the installed kronfac imports, reports the version of its metadata and
# trains with the ordinary loop. KRONFAC_BUILD_DIR (setup.py) may name a configured build tree to take the module
# from; without it, pip builds one under build-pip/ (a full compile of the library).
# Usage: pip_install.sh SOURCE_DIR WORK_DIR PYTHON
set -euo pipefail
src="$1" work="$2" python="$3"
rm -rf "$work"
mkdir -p "$work"
"$python" -m venv --system-site-packages "$work/venv"
# A Python that is itself a venv's (where pip installed torch, as on a GPU machine): --system-site-packages only
# reaches the base interpreter's packages, so the new venv is also shown that venv's (torch, setuptools), by a .pth.
"$python" - "$work/venv" <<'PY'
import pathlib, site, sys, sysconfig
if sys.prefix != sys.base_prefix:
    purelib = pathlib.Path(sys.argv[1]) / pathlib.Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    (purelib / "parent-venv.pth").write_text("".join(p + "\n" for p in site.getsitepackages()))
PY
# --no-index: nothing is downloaded (setuptools, wheel and torch are the system's).
"$work/venv/bin/python" -m pip install --quiet --no-build-isolation --no-index "$src"
cd "$work"  # away from the source tree, so that only the installed package can be imported
"$work/venv/bin/python" - "$work" <<'PY'
import importlib.metadata, sys
import torch, torch.nn.functional as F
import kronfac
assert kronfac.__file__.startswith(sys.argv[1] + "/venv/"), kronfac.__file__
assert importlib.metadata.version("kronfac") == kronfac.__version__, importlib.metadata.version("kronfac")
assert importlib.metadata.metadata("kronfac")["Name"] == "kronfac"
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy")
x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
for _ in range(3):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert opt.last_stats.statistics_updated and not opt.last_stats.skipped
print("kronfac", kronfac.__version__, "from", kronfac.__file__)
PY
