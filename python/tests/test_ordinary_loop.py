"""The ordinary PyTorch loop, unchanged but for the optimizer line: statistics from the user's own forward (the true
Fisher through the shared-forward protocol, with loss=) or backward (the empirical Fisher, without), PyTorch's loss
names, and the torch.optim habit of passing parameters."""
import warnings

import pytest
import torch
import torch.nn.functional as F

import kronfac


def mlp(seed=0, log_softmax=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)]
    return torch.nn.Sequential(*layers, *([torch.nn.LogSoftmax(dim=1)] if log_softmax else []))


def data(step):
    g = torch.Generator().manual_seed(step)
    return torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)


def train(protocol, steps=5, loss="softmax-cross-entropy", **options):
    model = mlp()
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss=loss, stats_period=2, refresh_period=2, **options)
    updated = []
    for step in range(steps):
        x, y = data(step)
        opt.zero_grad()
        if protocol == "shared-forward":
            opt.preconditioner.capture_forward()
            out = model(x)
            F.cross_entropy(out, y).backward(retain_graph=True)
            if opt.preconditioner._hooks:
                opt.preconditioner.statistics_from_forward(out)
        elif protocol == "capture-backward":
            opt.preconditioner.capture_backward(8)
            F.cross_entropy(model(x), y).backward()
        else:  # the ordinary loop
            F.cross_entropy(model(x), y).backward()
        opt.step()
        updated.append(opt.last_stats.statistics_updated)
    return [p.detach().clone() for p in model.parameters()], updated


def test_the_ordinary_loop_takes_the_true_fisher_from_the_users_forward():
    ordinary, updated = train("ordinary")
    assert updated == [True, False, True, False, True]
    shared, _ = train("shared-forward")
    for a, b in zip(ordinary, shared):
        assert torch.equal(a, b)  # the same statistics as the explicit shared-forward protocol, bit for bit


def test_without_a_loss_the_users_backward_gives_the_empirical_fisher_and_a_warning():
    with pytest.warns(UserWarning, match="empirical Fisher"):
        ordinary, updated = train("ordinary", loss=None)
    assert updated[0]
    explicit, _ = train("capture-backward", loss=None)
    for a, b in zip(ordinary, explicit):
        assert torch.equal(a, b)


def test_an_explicit_statistics_pass_turns_the_automatic_capture_off():
    model = mlp()
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="softmax-cross-entropy")
    x, y = data(0)
    opt.zero_grad()
    assert opt.update_statistics(x)
    F.cross_entropy(model(x), y).backward()  # not captured a second time
    assert not opt.preconditioner._hooks
    opt.step()
    assert opt.last_stats.statistics_updated


def test_evaluation_and_a_skipped_step_do_not_confuse_the_capture():
    model = mlp()
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="softmax-cross-entropy")
    x, y = data(0)
    model.eval()
    with torch.no_grad():
        model(x)
    assert not opt.preconditioner._hooks
    model.train()
    opt.zero_grad()
    F.cross_entropy(model(torch.full_like(x, float("nan"))), y).backward()
    opt.step()
    assert opt.last_stats.skipped
    for _ in range(2):  # the next clean steps capture and step normally
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        assert not opt.last_stats.skipped and opt.last_stats.statistics_updated


def test_pytorch_loss_names_name_their_likelihoods():
    assert kronfac._options.loss_name("nll") == "softmax-cross-entropy"
    assert kronfac._options.loss_name("cross_entropy") == "softmax-cross-entropy"
    assert kronfac._options.loss_name("bce_with_logits") == "sigmoid-cross-entropy"
    assert kronfac._options.loss_name("mse") == "squared-error"
    # pytorch/examples' MNIST habit: log_softmax with nll_loss.
    model = mlp(log_softmax=True)
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="nll")
    x, y = data(0)
    opt.zero_grad()
    F.nll_loss(model(x), y).backward()
    opt.step()
    assert opt.last_stats.statistics_updated and not opt.last_stats.skipped


def test_passing_parameters_instead_of_the_model_says_what_to_do():
    with pytest.raises(TypeError, match=r"needs the model itself \(a torch.nn.Module\), got generator"):
        kronfac.KFACOptimizer(mlp().parameters(), lr=0.1)
