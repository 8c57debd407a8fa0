"""The bundled data of the kfac tool, for Python: Fashion-MNIST from Debian's dataset-fashion-mnist (installed by
scripts/setup.sh; KFAC_FASHION_MNIST names another folder of its IDX files)."""
import gzip
import os

import torch

DIR = os.environ.get("KFAC_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def _idx(path, offset):
    with gzip.open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.uint8)[offset:]


def fashion_mnist(n=None, train=True):
    """The first n images (all when None) as [n, 1, 28, 28] floats in [0, 1], and their labels [n] (int64)."""
    prefix = "train" if train else "t10k"
    if n is None:
        n = 60000 if train else 10000
    images = _idx(os.path.join(DIR, f"{prefix}-images-idx3-ubyte.gz"), 16)[: n * 784]
    labels = _idx(os.path.join(DIR, f"{prefix}-labels-idx1-ubyte.gz"), 8)[:n]
    return images.float().div_(255).view(n, 1, 28, 28), labels.long()
