"""The statistics pass leaves the user's model and random stream as the user's own loop would; models with several
inputs and non-tensor outputs; a statistics step in eval mode warns."""
import warnings

import pytest
import torch
import torch.nn.functional as F

import kronfac


def bn_dropout_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                               torch.nn.Dropout(0.5), torch.nn.Linear(8, 3))


def batch(seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)


def buffers(model):
    return [b.clone() for b in model.buffers()]


def test_a_separate_statistics_pass_leaves_batchnorm_and_the_random_stream_alone():
    model = bn_dropout_model()
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy")
    x, y = batch()
    for step in range(3):
        before, stream = buffers(model), torch.get_rng_state()
        assert opt.update_statistics(x)
        for a, b in zip(before, buffers(model)):
            assert torch.equal(a, b)  # running_mean, running_var, num_batches_tracked
        assert torch.equal(stream, torch.get_rng_state())  # the user's next dropout masks are the same
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        assert opt.last_stats.statistics_updated
    assert int(model[1].num_batches_tracked) == 3  # the user's three forwards only


def test_the_ordinary_loop_leaves_the_random_stream_alone():
    x, y = batch()
    streams = []
    for use_kfac in (False, True):
        model = bn_dropout_model()
        opt = (kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy") if use_kfac
               else torch.optim.SGD(model.parameters(), lr=0.1))
        torch.manual_seed(7)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        streams.append(torch.get_rng_state())
        if use_kfac:
            assert opt.last_stats.statistics_updated
    assert torch.equal(*streams)  # the same dropout masks as the plain loop's, step after step


def test_the_separate_passes_dropout_stream_moves_on_from_pass_to_pass():
    model = bn_dropout_model()
    pre = kronfac.Preconditioner(model, loss="cross_entropy")
    x, _ = batch()
    states = []
    for _ in range(2):
        torch.manual_seed(1)  # the user's stream stands still between the passes
        assert pre.update_statistics(x)
        states.append(pre._pass_streams[0])
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        pre.step()
    assert not torch.equal(*states)  # the second pass's dropout masks are not the first's


class TwoInputs(torch.nn.Module):
    """A model called as model(x, mask=...), returning (logits, auxiliary) or a dict."""

    def __init__(self, as_dict=False):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.as_dict = torch.nn.Linear(5, 6), torch.nn.Linear(6, 3), as_dict

    def forward(self, x, scale, mask=None):
        h = torch.tanh(self.a(x)) * scale * (1 if mask is None else mask)
        logits = self.b(h)
        return {"logits": logits, "aux": h.sum()} if self.as_dict else (logits, h.sum())


@pytest.mark.parametrize("output", [0, "logits", lambda out: out[0]])
def test_models_with_several_inputs_and_outputs(output):
    as_dict = output == "logits"
    model = TwoInputs(as_dict)
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy", output=output, stats_fraction=0.5)
    x, y = batch()
    scale, mask = torch.rand(16, 1), torch.ones(16, 6)
    assert opt.update_statistics(x, scale, mask=mask)  # cut to the first 8 rows alike
    opt.zero_grad()
    out = model(x, scale, mask=mask)
    F.cross_entropy(out["logits"] if as_dict else out[0], y).backward()
    opt.step()
    assert opt.last_stats.statistics_updated and not opt.last_stats.skipped
    # The ordinary loop reads the same option (a new optimizer: an explicit pass turns the automatic capture off).
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy", output=output)
    opt.zero_grad()
    out = model(x, scale)
    F.cross_entropy(out["logits"] if as_dict else out[0], y).backward()
    opt.step()
    assert opt.last_stats.statistics_updated and not opt.last_stats.skipped


def test_a_tuple_output_without_the_option_says_which_option():
    opt = kronfac.KFACOptimizer(TwoInputs(), lr=0.1, loss="cross_entropy")
    x, _ = batch()
    with pytest.raises(TypeError, match=r"returned a tuple.*pass output="):
        opt.preconditioner.model(x, 1.0)  # a training forward on a statistics step
    with pytest.raises(TypeError, match="output= takes an index, a key or a callable"):
        kronfac.Preconditioner(TwoInputs(), loss="cross_entropy", output=[0])
    with pytest.raises(TypeError, match="update_statistics.*takes the model's inputs"):
        opt.update_statistics()


def test_a_statistics_step_in_eval_mode_warns_and_still_captures():
    model = bn_dropout_model().eval()
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy")
    x, y = batch()
    with pytest.warns(UserWarning, match="eval mode during a statistics step"):
        F.cross_entropy(model(x), y).backward()
    opt.step()
    assert opt.last_stats.statistics_updated


def test_communicator_takes_process_groups_or_kfacs_own():
    with pytest.raises(TypeError, match="communicator= takes a torch.distributed process group"):
        kronfac.Preconditioner(bn_dropout_model(), loss="cross_entropy", communicator="gloo")
    with pytest.raises(RuntimeError, match="torch.distributed is not initialized"):
        kronfac.TorchDistributed()


def test_a_cpu_model_without_the_runtime_setup_gets_one_note(monkeypatch):
    monkeypatch.setitem(kronfac.runtime._state, "configured", False)
    monkeypatch.setitem(kronfac.runtime._state, "advised", False)
    with pytest.warns(UserWarning, match=r"thread\(s\) on .* available core.*kronfac.configure_runtime\(\)"):
        kronfac.Preconditioner(bn_dropout_model(), loss="cross_entropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kronfac.Preconditioner(bn_dropout_model(), loss="cross_entropy")  # once per process


def test_a_model_moved_to_another_dtype_after_construction_trains_on():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy")
    x, y = batch()
    for dtype in (torch.float32, torch.float64):
        model.to(dtype)  # torch.nn.Module.to keeps the Parameter objects the optimizer holds
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(x.to(dtype)), y).backward()
            opt.step()
            assert opt.last_stats.statistics_updated and not opt.last_stats.skipped
        assert all(p.dtype == dtype and torch.isfinite(p).all() for p in model.parameters())


def test_a_layer_frozen_after_construction_is_skipped_then_resumed_and_reported():
    # Fine-tuning: freeze the head after building the optimizer. The frozen layer is neither tapped nor
    # preconditioned and keeps .grad None; the others train exactly as if it had been frozen before construction
    # (one-level blocks are independent); unfreezing resumes it. Each change is reported once.
    def run(freeze_first):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        if freeze_first:
            model[2].requires_grad_(False)
        opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy", refresh_period=1)
        model[2].requires_grad_(False)
        head = model[2].weight.detach().clone()
        stats = []
        for step in range(3):
            x, y = batch(seed=step)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            stats.append(opt.last_stats)
        assert torch.equal(model[2].weight, head) and model[2].weight.grad is None
        return model, opt, stats

    before, _, _ = run(freeze_first=True)
    after, opt, stats = run(freeze_first=False)
    assert torch.allclose(after[0].weight, before[0].weight, rtol=1e-6, atol=1e-7)
    assert [s.frozen_layers for s in stats] == [1, 1, 1]
    notes = [m for s in stats for m in s.messages if "frozen" in m]
    assert notes == ["layer '2' is frozen (no parameter requires grad): it is skipped, neither tapped nor "
                     "preconditioned, until it is unfrozen"]
    after[2].requires_grad_(True)  # unfreeze: trained again
    head = after[2].weight.detach().clone()
    x, y = batch(seed=9)
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(after(x), y).backward()
    opt.step()
    assert opt.last_stats.frozen_layers == 0 and not torch.equal(after[2].weight, head)
    assert any("layer '2' is unfrozen" in m for m in opt.last_stats.messages)


def test_a_layer_frozen_after_construction_under_a_global_stage_is_refused_with_the_remedy():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy", global_stage="two-level")
    model[2].requires_grad_(False)
    x, y = batch()
    F.cross_entropy(model(x), y).backward()
    with pytest.raises(RuntimeError, match="couples every layer, so a layer cannot be frozen after the optimizer"):
        opt.step()


def test_a_batchnorm_model_converted_after_construction_trains_on_with_its_current_running_statistics():
    # Before: "mixed dtype (CPU): expect input to have scalar type of BFloat16" from inside the core in an eval-mode
    # statistics step after model.double() (the kind held the float32 running statistics of construction), or, on
    # one dtype and device, statistics from stale running statistics. Oracle: the optimizer built before the
    # conversion steps exactly as one built after it.
    def run(convert_first):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
        if convert_first:
            model.double()
        opt = kronfac.KFACOptimizer(model, lr=0.1, loss="cross_entropy", refresh_period=1, factor_dtype="float64")
        model.double()
        g = torch.Generator().manual_seed(1)
        for step in range(4):
            model.train(step < 2)  # two steps update the running statistics, two read them
            x, y = torch.randn(8, 1, 8, 8, generator=g).double(), torch.randint(0, 3, (8,), generator=g)
            opt.zero_grad()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the eval-mode statistics step's warning
                F.cross_entropy(model(x), y).backward()
                opt.step()
            assert opt.last_stats.statistics_updated
        return model

    after, before = run(convert_first=False), run(convert_first=True)
    assert after[1].running_mean.dtype == torch.float64
    for p, q in zip(after.parameters(), before.parameters()):
        assert torch.allclose(p, q, rtol=1e-10, atol=1e-12)


def test_a_model_without_a_k_fac_layer_is_told_in_python_terms():
    with pytest.raises(ValueError, match=r"no module of this GRU has a K-FAC block \(the kinds: Linear, Conv2d"):
        kronfac.KFACOptimizer(torch.nn.GRU(3, 3), lr=0.1, loss="mse")
