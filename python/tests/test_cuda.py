"""The Python front end on CUDA against the CPU in float64 (skipped without a CUDA device; the bf16 model runs on
the CPU too): every method on stock torch.nn models of every supported kind, reduce, a two-level space, bf16 models
with float32 factors, and a state_dict saved on CUDA and loaded on the CPU. The runs use the empirical Fisher, so both devices see the same statistics.
Tolerances are relative to the largest entry of the CPU float64 result: float64 1e-8, float32 1e-3, bfloat16 5e-2
(tests/device/cuda_test.cpp says why); bf16 weights round each update differently, so bf16 runs are compared at
their first step."""
import io

import pytest
import torch

import kronfac

pytestmark = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

METHODS = ["kfac", "ekfac", "tkfac", "tekfac"]
TOLERANCE = {torch.float64: 1e-8, torch.float32: 1e-3, torch.bfloat16: 5e-2}


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def cnn():
    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                               torch.nn.Conv2d(3, 2, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8, 3))


class Sequence(torch.nn.Module):
    """Embedding, LayerNorm, self-attention (replaced by kronfac.nn.MultiheadAttention) and a Linear head."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, ids):
        h = self.norm(self.embed(ids))
        return self.head(h + self.attn(h, h, h, need_weights=False)[0])


def batch(name):
    g = torch.Generator().manual_seed(3)
    if name == "sequence":
        return torch.randint(0, 10, (8, 5), generator=g), torch.randint(0, 3, (8, 5), generator=g)
    x = torch.randn(8, 6, generator=g) if name == "mlp" else torch.randn(8, 2, 6, 6, generator=g)
    return x, torch.randint(0, 3, (8,), generator=g)


def build(name):
    torch.manual_seed(0)
    model = {"mlp": mlp, "cnn": cnn, "sequence": Sequence}[name]()
    if name == "sequence":
        kronfac.nn.replace_attention(model)
    return model


def run(name, device, dtype, steps=3, **options):
    model = build(name).to(device=device, dtype=dtype)
    x, y = batch(name)
    x = x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
    y = y.to(device)
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="softmax-cross-entropy", fisher="empirical", damping=1e-2,
                             refresh_period=1, **options)
    grads = []
    for _ in range(steps):
        opt.zero_grad()
        opt.update_statistics(x, targets=y)
        kronfac.loss(model(x), y, "softmax-cross-entropy").backward()
        opt.step()
        for p in model.parameters():
            assert p.grad.device == p.device and p.grad.dtype == p.dtype
        grads.append([p.grad.detach().to("cpu", torch.float64, copy=True) for p in model.parameters()])
    return model, opt, grads


def assert_close(got, want, dtype):
    for s, (g_step, w_step) in enumerate(zip(got, want)):
        for i, (g, w) in enumerate(zip(g_step, w_step)):
            scale = max(w.abs().max().item(), 1e-12)
            err = (g - w).abs().max().item() / scale
            assert err <= TOLERANCE[dtype], f"step {s}, parameter {i}, {dtype}: relative error {err:.3g}"


@needs_cuda
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["mlp", "cnn", "sequence"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cuda_matches_cpu_float64(name, method, dtype):
    _, _, want = run(name, "cpu", torch.float64, method=method)
    _, _, got = run(name, "cuda", dtype, method=method)
    assert_close(got, want, dtype)


@needs_cuda
def test_cuda_reduce_and_two_level_match_cpu_float64():
    for options in ({"weight_sharing": "reduce"}, {"method": "kfac+nicolaides"}):
        name = "sequence" if "weight_sharing" in options else "mlp"
        _, _, want = run(name, "cpu", torch.float64, **options)
        _, _, got = run(name, "cuda", torch.float32, **options)
        assert_close(got, want, torch.float32)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_bfloat16_model_with_float32_factors(device):
    _, _, want = run("cnn", "cpu", torch.float64)
    model, opt, got = run("cnn", device, torch.bfloat16)
    assert_close(got[:1], want[:1], torch.bfloat16)
    assert all(torch.isfinite(g).all() for step in got for g in step)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


@needs_cuda
def test_state_dict_saved_on_cuda_loads_on_cpu():
    model, opt, _ = run("cnn", "cuda", torch.float32)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    cpu_model = build("cnn").float()
    cpu_opt = kronfac.KFACOptimizer(cpu_model, lr=0.1, loss="softmax-cross-entropy", fisher="empirical", damping=1e-2,
                                 refresh_period=1)
    cpu_opt.load_state_dict(torch.load(buffer, map_location="cpu"))
    x, y = batch("cnn")
    for o, m, dev in ((opt, model, "cuda"), (cpu_opt, cpu_model, "cpu")):
        m.load_state_dict(model.state_dict())
        o.zero_grad()
        o.update_statistics(x.to(dev), targets=y.to(dev))
        kronfac.loss(m(x.to(dev)), y.to(dev), "softmax-cross-entropy").backward()
        o.preconditioner.step()
    for p, q in zip(model.parameters(), cpu_model.parameters()):
        assert (p.grad.cpu() - q.grad).abs().max().item() <= 1e-4 * max(q.grad.abs().max().item(), 1e-12)


@needs_cuda
@pytest.mark.parametrize("method", ["muon", "shampoo", "soap"])
def test_muon_shampoo_soap_on_cuda_equal_the_cpu(method):
    # Float64 on both devices; the state (moments, factors, bases, the CPU-held counters) follows the parameters, and
    # a state_dict saved on CUDA loads on the CPU.
    runs = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = mlp().double().to(device)
        x = torch.randn(16, 6, dtype=torch.float64, device=device)
        y = torch.randint(0, 3, (16,), device=device)
        make = {"muon": lambda: kronfac.Muon(model), "shampoo": lambda: kronfac.Shampoo(model.parameters(),
                                                                                  precondition_frequency=2),
                "soap": lambda: kronfac.SOAP(model.parameters(), precondition_frequency=2)}[method]
        opt = make()
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            assert not opt.last_stats.skipped
        runs[device] = ([p.detach().cpu() for p in model.parameters()], opt.state_dict())
    scale = max(p.abs().max() for p in runs["cpu"][0])
    for a, b in zip(*[runs[d][0] for d in ("cpu", "cuda")]):
        assert (a - b).abs().max() <= TOLERANCE[torch.float64] * scale
    cpu_model = mlp().double()
    cpu_opt = kronfac.Muon(cpu_model) if method == "muon" else {"shampoo": kronfac.Shampoo, "soap": kronfac.SOAP}[method](
        cpu_model.parameters())
    cpu_opt.load_state_dict(runs["cuda"][1])
