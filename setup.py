"""Builds kronfac's extension module with the project's own CMake, against the torch installed where pip runs.

pyproject.toml holds the metadata; this file only turns `pip install --no-build-isolation .` into a CMake build of
the target kfac_python (the C++ library, static, and its bindings), whose module it copies into the wheel.

Environment: KRONFAC_BUILD_DIR, a CMake build folder to take the module from: one configured already (the project's
own build/, with KFAC_PYTHON=ON) is built as it was configured, without a configure step; by default
build-pip/<python>-<torch>, configured here and kept, so that a second install is incremental. KRONFAC_CMAKE_ARGS,
more arguments for the configure step; CMAKE_BUILD_PARALLEL_LEVEL, the compile jobs (default: every core). ccache is
used when it is on PATH.
"""
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


def project_version():
    """The C++ project's version (CMakeLists.txt's project()), which kronfac.__version__ also reports."""
    match = re.search(r"project\(kfac VERSION ([0-9][0-9.]*)", (ROOT / "CMakeLists.txt").read_text())
    return match.group(1)


def installed_torch():
    try:
        import torch
        import torch.utils
    except ImportError:
        sys.exit("kronfac: the build needs the torch you will run it with, and pip's isolated build environment has "
                 "none. Install torch first, then: pip install --no-build-isolation . (on Debian, in a venv made with "
                 "python3 -m venv --system-site-packages, for python3-torch)")
    return torch


class CMakeModule(Extension):
    def __init__(self, name, target):
        super().__init__(name, sources=[])
        self.target = target


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        torch = installed_torch()
        tag = f"py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__.split('+')[0]}"
        given = os.environ.get("KRONFAC_BUILD_DIR")
        build = pathlib.Path(given or ROOT / "build-pip" / tag).resolve()
        if not (given and (build / "CMakeCache.txt").exists()):
            self.configure(torch, build)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
        subprocess.run(["cmake", "--build", str(build), "--target", ext.target, "--parallel", jobs], check=True)
        built = sorted((build / "python" / "kronfac").glob("_kfac*" + (".pyd" if os.name == "nt" else ".so")))
        if not built:
            sys.exit(f"kronfac: the CMake build in {build} made no _kfac module (configured with KFAC_PYTHON=ON?)")
        destination = pathlib.Path(self.get_ext_fullpath(ext.name))
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], destination)

    @staticmethod
    def configure(torch, build):
        configure = ["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                     f"-DPython3_EXECUTABLE={sys.executable}", "-DKFAC_PYTHON=ON", "-DKFAC_BUILD_TESTS=OFF",
                     "-DKFAC_BUILD_TOOLS=OFF", "-DKFAC_INSTALL=OFF"]
        # The torch of this Python brings its CMake package (pip wheels); Debian's python3-torch does not, and
        # libtorch-dev's, the same library, is then found on CMake's default path.
        torch_dir = pathlib.Path(torch.utils.cmake_prefix_path) / "Torch"
        if torch_dir.is_dir():
            configure.append(f"-DTorch_DIR={torch_dir}")
        if shutil.which("ninja") and not (build / "CMakeCache.txt").exists():
            configure += ["-G", "Ninja"]
        if shutil.which("ccache"):
            configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
        configure += shlex.split(os.environ.get("KRONFAC_CMAKE_ARGS", ""))
        subprocess.run(configure, check=True)


setup(
    version=project_version(),
    ext_modules=[CMakeModule("kronfac._kfac", target="kfac_python")],
    cmdclass={"build_ext": CMakeBuild},
    # setuptools' own build folder, away from the project's CMake build/ folder.
    options={"build": {"build_base": str(ROOT / "build-pip" / "setuptools")}},
)
