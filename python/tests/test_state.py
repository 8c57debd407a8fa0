"""state_dict resume equals an uninterrupted run bit for bit; LR schedulers drive the learning rate; param groups."""
import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F

import kronfac


def build(seed=0, **options):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                torch.nn.Linear(48, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 4))
    options = dict(dict(lr=0.05, damping=1e-2, refresh_period=3, loss="softmax-cross-entropy", method="ekfac",
                        fallback="adam"), **options)
    return model, kronfac.KFACOptimizer(model, **options)


def batches(n):
    g = torch.Generator().manual_seed(7)
    return [(torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(n)]


def run(model, opt, data, scheduler=None):
    for x, y in data:
        opt.zero_grad()
        opt.update_statistics(x)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()


def test_resume_is_bitwise_equal_to_an_uninterrupted_run():
    data = batches(10)
    model, opt = build()
    run(model, opt, data)
    expected = [p.detach().clone() for p in model.parameters()]

    model, opt = build()
    run(model, opt, data[:4])
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, buffer)
    # A fresh process's objects, from other initial weights: everything comes from the checkpoint.
    model, opt = build(seed=1)
    buffer.seek(0)
    state = torch.load(buffer)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    run(model, opt, data[4:])
    for a, b in zip(model.parameters(), expected):
        assert torch.equal(a.detach(), b)
    # and the checkpoint mattered: without it the run ends elsewhere
    model, opt = build()
    run(model, opt, data[4:])
    assert not torch.equal(next(model.parameters()).detach(), expected[0])


def test_a_state_dict_of_another_optimizer_is_refused():
    model, opt = build()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="not a KFACOptimizer state"):
        opt.load_state_dict(sgd.state_dict())


def test_lr_scheduler_drives_the_learning_rate():
    data = batches(6)
    model, opt = build(kl_clip=0)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    run(model, opt, data, scheduler)
    scheduled = [p.detach().clone() for p in model.parameters()]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.1 ** 3)
    assert opt._core.group_lr(0) == pytest.approx(0.05 * 0.1 ** 2)  # the last step's

    # The same learning rates set by hand give the same run; a constant one does not.
    model, opt = build(kl_clip=0)
    for k, (x, y) in enumerate(data):
        opt.param_groups[0]["lr"] = 0.05 * 0.1 ** (k // 2)
        run(model, opt, [(x, y)])
    assert all(torch.equal(a.detach(), b) for a, b in zip(model.parameters(), scheduled))
    model, opt = build(kl_clip=0)
    run(model, opt, data)
    assert not torch.equal(next(model.parameters()).detach(), scheduled[0])


def test_parameter_groups_have_their_own_learning_rate():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    before = [p.detach().clone() for p in model.parameters()]
    opt = kronfac.KFACOptimizer(model, params=[{"params": model[0].parameters(), "lr": 0.0 + 1e-12},
                                            {"params": model[2].parameters()}],
                             lr=0.1, momentum=0, kl_clip=0, loss="softmax-cross-entropy")
    x, y = torch.randn(6, 5), torch.randint(0, 3, (6,))
    opt.update_statistics(x)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    moved = [(a - b.detach()).abs().max().item() for a, b in zip(before, model.parameters())]
    assert max(moved[:2]) < 1e-9 < min(moved[2:])
    with pytest.raises(NotImplementedError, match="fixed at construction"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})
    with pytest.raises(ValueError, match="momentum must be in"):
        opt.param_groups[1]["momentum"] = 2.0
        opt.step()


def test_the_preconditioner_alone_resumes_too():
    data = batches(6)

    def train(pre, model, part):
        for x, y in part:
            model.zero_grad()
            pre.update_statistics(x)
            F.cross_entropy(model(x), y).backward()
            pre.step()
            with torch.no_grad():
                for p in model.parameters():
                    p.sub_(0.05 * p.grad)

    def fresh(seed=0):
        model, _ = build(seed)
        return model, kronfac.Preconditioner(model, loss="softmax-cross-entropy", refresh_period=2, method="tekfac")

    model, pre = fresh()
    train(pre, model, data)
    expected = [p.detach().clone() for p in model.parameters()]
    model, pre = fresh()
    train(pre, model, data[:3])
    state, weights = pre.state_dict(), model.state_dict()
    model, pre = fresh(seed=1)
    model.load_state_dict(weights)
    pre.load_state_dict(state)
    assert pre.core.steps == 3
    train(pre, model, data[3:])
    assert all(torch.equal(a.detach(), b) for a, b in zip(model.parameters(), expected))


def trained():
    model, opt = build()
    run(model, opt, batches(2))
    return model, opt


def test_a_damaged_state_is_refused_and_the_optimizer_left_unchanged():
    model, opt = trained()
    state = opt.state_dict()
    blob = bytearray(state["kfac"]["bytes"])
    blob[len(blob) // 2] ^= 0x10  # one bit
    state["kfac"] = dict(state["kfac"], bytes=bytes(blob))
    fresh_model, fresh = trained()
    before = fresh.state_dict()
    with pytest.raises(ValueError, match="the state is damaged"):
        fresh.load_state_dict(state)
    assert fresh.state_dict()["kfac"] == before["kfac"]
    with pytest.raises(ValueError, match="is not a kronfac state"):
        fresh.preconditioner.load_state_dict({"param_groups": []})


def test_the_state_of_another_kind_of_optimizer_is_refused_by_name():
    model, opt = trained()
    muon = kronfac.Muon(model)
    with pytest.raises(ValueError, match="this is the state of a kronfac.Muon, not of a KFACOptimizer"):
        opt.load_state_dict(muon.state_dict())
    with pytest.raises(ValueError, match="this is the state of a kronfac.KFACOptimizer, not of a Muon"):
        muon.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="this is the state of a kronfac.Preconditioner, not of a QModelOptimizer"):
        kronfac.QModelOptimizer(model, loss="cross_entropy").load_state_dict(opt.preconditioner.state_dict())


def test_an_integer_beyond_64_bits_is_refused_by_name():
    with pytest.raises(ValueError, match=r"refresh_period=1180591620717411303424 does not fit in 64 bits"):
        kronfac.KFACOptimizer(torch.nn.Linear(3, 2), loss="mse", refresh_period=2**70)
    with pytest.raises(ValueError, match=r"momentum=.* does not fit in 64 bits"):
        kronfac.KFACOptimizer(torch.nn.Linear(3, 2), loss="mse", momentum=-2**64)


@pytest.mark.parametrize("copy_it", [pickle.dumps, copy.copy, copy.deepcopy, lambda o: torch.save(o, io.BytesIO())])
def test_objects_whose_state_lives_in_the_core_refuse_to_be_copied(copy_it):
    _, opt = trained()
    for obj in (opt, opt.preconditioner):
        with pytest.raises(TypeError, match="state_dict"):
            copy_it(obj)
