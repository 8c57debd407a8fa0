"""The Python front end runs the C++ core: on the same float64 model, batch and options, its parameters and
preconditioned gradients equal the C++ API's (kfac::nn model, kfac::Preconditioner, kfac::KfacOptimizer) bit for
bit, for every method, both damping modes, Linear and Conv2d, and a two-level space."""
import pytest
import torch

import kronfac
from kronfac import _kfac

import _kfac_reference  # test support, built beside the package (python/src/reference.cpp)

MLP = ["linear 6 5", "tanh", "linear 5 4", "tanh", "linear 4 3"]
CNN = ["conv2d 2 3 3 1 1", "relu", "conv2d 3 2 3 2 0", "relu", "flatten", "linear 8 3"]


def python_model(spec):
    layers = []
    for line in spec:
        kind, *n = line.split()
        n = [int(v) for v in n]
        if kind == "linear":
            layers.append(torch.nn.Linear(n[0], n[1]))
        elif kind == "conv2d":
            layers.append(torch.nn.Conv2d(n[0], n[1], n[2], stride=n[3], padding=n[4]))
        elif kind == "conv1d":
            layers.append(torch.nn.Conv1d(n[0], n[1], n[2], stride=n[3], padding=n[4]))
        elif kind == "embedding":
            layers.append(torch.nn.Embedding(n[0], n[1]))
        elif kind == "rmsnorm":
            layers.append(kronfac.nn.RMSNorm(n[0]))
        elif kind == "groupnorm":
            layers.append(torch.nn.GroupNorm(n[0], n[1]))
        elif kind == "layernorm":
            layers.append(torch.nn.LayerNorm(n[0]))
        elif kind == "batchnorm2d":
            layers.append(torch.nn.BatchNorm2d(n[0]))
        else:
            layers.append({"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "flatten": torch.nn.Flatten}[kind]())
    return torch.nn.Sequential(*layers)


SEQUENCE = ["embedding 10 6", "layernorm 6", "linear 6 6", "tanh", "linear 6 3"]
NORMALIZED_CNN = ["conv2d 2 3 3 1 1", "batchnorm2d 3", "relu", "conv2d 3 2 3 2 0", "relu", "flatten", "linear 8 3"]
RMS_SEQUENCE = ["embedding 10 6", "rmsnorm 6", "linear 6 6", "tanh", "linear 6 3"]
CONV1D = ["conv1d 2 4 3 1 1", "groupnorm 2 4", "relu", "conv1d 4 2 3 2 0", "flatten", "linear 4 3"]


def batch(spec):
    g = torch.Generator().manual_seed(3)
    if spec is SEQUENCE or spec is RMS_SEQUENCE:  # token ids [B, T], a class per position
        return torch.randint(0, 10, (16, 5), generator=g), torch.randint(0, 3, (16, 5), generator=g)
    if spec is CONV1D:  # [B, C, L]
        return torch.randn(16, 2, 6, generator=g), torch.randint(0, 3, (16,), generator=g)
    x = torch.randn(16, 6, generator=g) if spec is MLP else torch.randn(16, 2, 6, 6, generator=g)
    return x, torch.randint(0, 3, (16,), generator=g)


def python_run(spec, options, optimizer, steps):
    torch.manual_seed(0)
    model = python_model(spec).double()
    start = [p.detach().clone() for p in model.parameters()]
    x, y = batch(spec)
    empirical = options.get("fisher") == "empirical"
    opt = kronfac.KFACOptimizer(model, loss="softmax-cross-entropy", **optimizer, **options)
    for _ in range(steps):
        opt.update_statistics(x, targets=y if empirical else None)
        opt.zero_grad()
        kronfac.loss(model(x), y, "softmax-cross-entropy").backward()
        opt.step()
    return start, [p.detach() for p in model.parameters()] + [p.grad for p in model.parameters()]


CASES = [
    ("kfac", {"damping_mode": "factored"}),
    ("kfac", {"damping_mode": "eigen"}),
    ("ekfac", {"damping_mode": "eigen"}),
    ("ekfac", {"damping_mode": "factored", "fisher": "empirical"}),
    ("tkfac", {"damping_mode": "factored"}),
    ("tkfac", {"damping_mode": "eigen"}),
    ("tekfac", {"damping_mode": "eigen"}),
    ("tekfac", {"damping_mode": "factored"}),
    ("kfac", {"global_stage": "two-level", "coarse_space": "nicolaides"}),
]


@pytest.mark.parametrize("spec", [MLP, CNN], ids=["linear", "conv2d"])
@pytest.mark.parametrize("method,extra", CASES, ids=[f"{m}-{'-'.join(map(str, e.values()))}" for m, e in CASES])
def test_bitwise_equal_to_the_cpp_api(float64, spec, method, extra):
    options = dict(method=method, damping=1e-2, refresh_period=2, stats_period=1, **extra)
    optimizer = dict(lr=0.1, momentum=0.5, kl_clip=1e-2, weight_decay=1e-4)
    start, py = python_run(spec, options, optimizer, steps=4)
    x, y = batch(spec)
    cpp = _kfac_reference.reference_run(spec, start, x, y, "softmax-cross-entropy",
                                        _kfac.PreconditionerOptions(options), optimizer, 4)
    assert len(cpp) == len(py)
    for a, b in zip(py, cpp):
        assert a.dtype == torch.float64
        assert torch.equal(a, b), (a - b).abs().max().item()
    # The run moved: the comparison is not of two untouched models.
    assert not torch.equal(py[0], start[0])


MODERN = [(SEQUENCE, "kfac", "expand"), (SEQUENCE, "ekfac", "reduce"), (NORMALIZED_CNN, "kfac", "expand"),
          (NORMALIZED_CNN, "tekfac", "expand"), (RMS_SEQUENCE, "kfac", "expand"), (CONV1D, "kfac", "expand"),
          (CONV1D, "ekfac", "reduce")]


@pytest.mark.parametrize("spec,method,sharing", MODERN,
                         ids=["sequence-kfac-expand", "sequence-ekfac-reduce", "batchnorm-kfac", "batchnorm-tekfac",
                              "rmsnorm-kfac", "conv1d-groupnorm-kfac-expand", "conv1d-groupnorm-ekfac-reduce"])
def test_the_modern_kinds_follow_the_cpp_api(float64, spec, method, sharing):
    # Embedding, LayerNorm and RMSNorm on [B, T, d], sequence Linear layers (expand and reduce), BatchNorm2d,
    # Conv1d and GroupNorm, registered from stock torch.nn modules (RMSNorm: kronfac.nn's where torch has none).
    # LibTorch's and PyTorch's kernels may round differently, so these agree to rounding, not bit for bit.
    options = dict(method=method, damping=1e-2, refresh_period=2, weight_sharing=sharing)
    optimizer = dict(lr=0.1, momentum=0.5, kl_clip=1e-2)
    start, py = python_run(spec, options, optimizer, steps=4)
    x, y = batch(spec)
    cpp = _kfac_reference.reference_run(spec, start, x, y, "softmax-cross-entropy",
                                        _kfac.PreconditionerOptions(options), optimizer, 4)
    for a, b in zip(py, cpp):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    assert not torch.allclose(py[0], start[0])
