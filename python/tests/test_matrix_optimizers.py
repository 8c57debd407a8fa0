"""kronfac.Muon, kronfac.Shampoo and kronfac.SOAP: the same runs as the C++ API's bit for bit (Muon's split included), the
torch.optim.Optimizer habits (parameter groups, schedulers, state_dict, a plain loop), the published Muon against
torch.optim.Muon where torch ships it, and the numerical policy."""
import copy

import pytest
import torch

import kronfac
from kronfac import _kfac

import _kfac_reference  # test support, built beside the package (python/src/reference.cpp)
from test_against_cpp import CNN, MLP, SEQUENCE, batch, python_model

METHODS = {"muon": kronfac.Muon, "shampoo": kronfac.Shampoo, "soap": kronfac.SOAP}
OPTIONS = {"muon": {"lr": 0.02, "weight_decay": 0.01}, "shampoo": {"lr": 1e-2, "precondition_frequency": 2},
           "soap": {"lr": 1e-2, "precondition_frequency": 2}}


# Token ids through an embedding and sequence Linear layers (SEQUENCE without its LayerNorm, whose fused kernel rounds
# differently in PyTorch and kfac::nn, and Adam-type steps amplify rounding where gradients are near zero).
EMBEDDED = [SEQUENCE[0]] + SEQUENCE[2:]


@pytest.mark.parametrize("spec", [MLP, CNN, EMBEDDED], ids=["mlp", "cnn", "embedded"])
@pytest.mark.parametrize("method", list(METHODS))
def test_equals_the_cpp_api_bit_for_bit(method, spec, float64):
    torch.manual_seed(0)
    model = python_model(spec).double()
    start = [p.detach().clone() for p in model.parameters()]
    x, y = batch(SEQUENCE if spec is EMBEDDED else spec)
    opt = (kronfac.Muon(model, adamw_lr=3e-3, **OPTIONS[method]) if method == "muon"
           else METHODS[method](model.parameters(), **OPTIONS[method]))
    for _ in range(5):
        opt.zero_grad()
        kronfac.loss(model(x), y, "softmax-cross-entropy").backward()
        opt.step()
        assert not opt.last_stats.skipped
    reference = _kfac_reference.reference_parameterwise_run(spec, start, x, y, "softmax-cross-entropy", method,
                                                            OPTIONS[method], 3e-3, 5)
    for mine, theirs, first in zip(model.parameters(), reference, start):
        assert not torch.equal(mine.detach(), first)
        assert torch.equal(mine.detach(), theirs)


def test_muon_split_names_what_goes_where():
    model = python_model(SEQUENCE)
    opt = kronfac.Muon(model)
    assert "orthogonalizes 1 matrix (2.weight)" in opt.split_report
    assert "embeddings 0.weight" in opt.split_report and "the output head 4.weight" in opt.split_report
    assert [len(g["params"]) for g in opt.param_groups] == [1, 6]
    assert opt.param_groups[1]["orthogonalize"] is False and opt.param_groups[1]["lr"] == 1e-3
    with pytest.raises(RuntimeError, match=r"parameter 1 of group 0 \[5\].*orthogonalize = false"):
        kronfac.Muon(python_model(MLP).parameters())


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch.optim.Muon ships with torch >= 2.9")
def test_muon_matches_torch_optim_muon():
    torch.manual_seed(1)
    w = torch.randn(32, 48)
    mine, theirs = w.clone().requires_grad_(), w.clone().requires_grad_()
    a = kronfac.Muon([mine], lr=0.02, weight_decay=0.1)
    b = torch.optim.Muon([theirs], lr=0.02, weight_decay=0.1)
    for _ in range(3):
        g = torch.randn(32, 48)
        mine.grad, theirs.grad = g.clone(), g.clone()
        a.step()
        b.step()
    # torch.optim.Muon iterates in bfloat16, this core in the parameter's dtype: equal within bf16's precision.
    assert torch.allclose(mine, theirs, atol=2e-3)


@pytest.mark.parametrize("method", list(METHODS))
def test_ordinary_loop_groups_scheduler_and_state_dict(method):
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 2))
    x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))

    def make(m):
        return kronfac.Muon(m) if method == "muon" else METHODS[method](m.parameters())

    opt = make(model)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    losses = []
    twin = None
    for step in range(12):
        if step == 6:  # a copy of the model and the optimizer's state_dict continues identically
            twin = copy.deepcopy(model)
            twin_opt = make(twin)
            twin_opt.load_state_dict(opt.state_dict())
            twin_sched = torch.optim.lr_scheduler.StepLR(twin_opt, step_size=4, gamma=0.5, last_epoch=5)
        for m, o, s in [(model, opt, sched)] + ([(twin, twin_opt, twin_sched)] if twin is not None else []):
            o.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(x), y)
            loss.backward()
            o.step()
            s.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert opt.param_groups[0]["lr"] == twin_opt.param_groups[0]["lr"] < make(model).param_groups[0]["lr"]
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("method", list(METHODS))
def test_non_finite_gradient_changes_nothing(method):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    opt = kronfac.Muon(model) if method == "muon" else METHODS[method](model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(3, 4)).sum().backward()
    model[0].weight.grad[0, 0] = float("inf")
    opt.step()
    assert opt.last_stats.skipped and "non-finite gradient" in opt.last_stats.messages[-1]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_bad_options_name_the_keyword():
    params = [torch.zeros(3, 3, requires_grad=True)]
    with pytest.raises(ValueError, match="unknown option 'beta'.*did you mean 'beta1'"):
        kronfac.SOAP(params, beta=0.9)
    with pytest.raises(ValueError, match="grafting"):
        kronfac.Shampoo(params, grafting="sgd")
    with pytest.raises(ValueError, match="precondition_frequency"):
        kronfac.SOAP([{"params": params, "precondition_frequency": 0}])
    with pytest.raises(ValueError, match="unknown option 'betas'"):
        kronfac.Shampoo([{"params": params, "betas": (0.9, 0.99)}])
