import os
import sys

import pytest
import torch

# The package as built (<build>/python, ctest sets PYTHONPATH) or installed.
import kronfac  # noqa: F401

torch.set_num_threads(int(os.environ.get("KFAC_TEST_THREADS", "2")))
kronfac.runtime._state["advised"] = True  # the runtime note is tested on its own (test_model_state.py)


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: the CUDA suite (test_cuda.py; scripts/device-check.sh runs it first)")
