"""Keywords, errors, the registration report, the statistics protocols and the preconditioner alone."""
import gc

import pytest
import torch
import torch.nn.functional as F

import kronfac


def mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))


def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)


@pytest.mark.parametrize("keywords,message", [
    ({"dampng": 1e-3}, "unknown option 'dampng'; did you mean 'damping'"),
    ({"kl_clp": 1e-3}, "unknown option 'kl_clp'; did you mean 'kl_clip'"),
    ({"damping": -1.0}, "damping must be finite and > 0, got -1"),
    ({"refresh_period": 0}, "refresh_period must be >= 1, got 0"),
    ({"refresh_period": 2.5}, "refresh_period"),
    ({"damping_mode": "eigne"}, "eigne"),
    ({"method": "ekfc"}, "did you mean 'ekfac'"),
    ({"lr": 0.0}, "lr must be finite and > 0, got 0"),
    ({"momentum": 1.0}, "momentum must be in \\[0, 1\\), got 1"),
    ({"damping_mode": "eigen", "inverse_method": "cholesky"}, "cannot be combined"),
])
def test_bad_keywords_raise_value_error_naming_them(keywords, message):
    with pytest.raises(ValueError, match=message):
        kronfac.KFACOptimizer(mlp(), loss="softmax-cross-entropy", **keywords)


def test_the_version_is_the_projects():
    import pathlib
    import re
    cmake = (pathlib.Path(__file__).parents[2] / "CMakeLists.txt").read_text()
    assert kronfac.__version__ == re.search(r"project\(kfac VERSION ([0-9.]+)", cmake).group(1)


def test_keywords_take_the_tables_types():
    opt = kronfac.KFACOptimizer(mlp(), loss="softmax_cross_entropy", factor_dtype=torch.float64, refresh_period=3,
                             damping=1, fisher_samples=2, background_refresh=False, coarse_damping=None)
    options = opt.preconditioner.core.options.to_dict()
    assert options["factor_dtype"] == "float64" and options["refresh_period"] == 3 and options["damping"] == 1.0
    with pytest.raises(TypeError, match="option 'damping' takes"):
        kronfac.Preconditioner(mlp(), damping=[1])
    with pytest.raises(ValueError, match="unknown loss 'crossentropy'"):
        kronfac.Preconditioner(mlp(), loss="crossentropy")


def test_every_option_is_documented_from_the_tables():
    specs = kronfac.option_specs()
    names = [s["name"] for s in specs]
    assert {"damping", "refresh_period", "method", "fallback", "weight_sharing", "spectrum_period"} <= set(names)
    assert len(names) == len(set(names))
    doc = kronfac.KFACOptimizer.__doc__
    for s in specs + kronfac.option_specs("optimizer"):
        assert f"    {s['name']} = " in doc
    assert "kl_clip = 0.001" in doc and "damping = 0.001" in doc


def test_cpp_errors_arrive_with_their_message():
    model = mlp()
    pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy")
    x, _ = data()
    with pytest.raises(RuntimeError, match="the targets must have one row per example of the inputs \\(8\\)"):
        kronfac.Preconditioner(model, loss="softmax-cross-entropy", fisher="empirical").update_statistics(
            x, targets=torch.zeros(3, dtype=torch.long))
    with pytest.raises(RuntimeError, match="targets must be integer class indices of shape \\[8\\], got Float"):
        kronfac.Preconditioner(model, loss="softmax-cross-entropy", fisher="empirical").update_statistics(
            x, targets=torch.zeros(8))
    with pytest.raises(ZeroDivisionError):  # the forward's own exception, unchanged
        pre.update_statistics(x, forward=lambda t: 1 / 0)
    assert not any(layer.armed for layer in pre.layers)  # the failed pass left nothing armed behind
    assert pre.update_statistics(x)
    with pytest.raises(ValueError, match="needs the model's likelihood"):
        kronfac.Preconditioner(model).update_statistics(x)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        kronfac.Preconditioner([torch.nn.Linear(2, 2)])
    with pytest.raises(RuntimeError, match=r"no K-FAC layers to precondition: the option exclude \('.\*'\) matches"):
        kronfac.Preconditioner(torch.nn.Sequential(torch.nn.Linear(2, 2)), exclude=".*")
    # A model with no K-FAC layer at all is told so in Python terms, before the core.
    with pytest.raises(ValueError, match="no module of this Sequential has a K-FAC block"):
        kronfac.Preconditioner(torch.nn.Sequential(torch.nn.Conv3d(1, 1, 1)))


class Gated(torch.nn.Module):
    """A module no kind covers, with its own parameter."""

    def __init__(self):
        super().__init__()
        self.gate = torch.nn.Parameter(torch.ones(6))

    def forward(self, x):
        return x * self.gate


class Odd(torch.nn.Module):
    """Two Linear layers around modules no kind takes: a module of the user's, a grouped convolution."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(5, 6)
        self.gated = Gated()
        self.grouped = torch.nn.Conv2d(2, 2, 1, groups=2)
        self.head = torch.nn.Linear(6, 3)

    def forward(self, x):
        h = torch.tanh(self.gated(self.fc(x)))
        mixed = self.grouped(h[:, :4].reshape(-1, 2, 2, 1)).reshape(-1, 4)
        return self.head(torch.cat([mixed, h[:, 4:]], 1))


def test_a_model_with_unsupported_modules_trains_and_the_report_lists_them():
    torch.manual_seed(0)
    model = Odd()
    grouped = model.grouped.weight.detach().clone()
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="softmax-cross-entropy", fallback="adam")
    report = str(opt.preconditioner.registration)
    assert report == ("registered 2 blocks: 2 Linear (expand); fallback (adam) for 3 parameters: gated.gate, "
                      "grouped.weight (groups 2: K-FAC supports groups 1 only), "
                      "grouped.bias (groups 2: K-FAC supports groups 1 only)")
    x, y = data()
    losses = []
    for _ in range(15):
        opt.zero_grad()
        opt.update_statistics(x)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert opt.last_stats.step == 14 and not opt.last_stats.skipped
    assert not torch.equal(model.grouped.weight.detach(), grouped)  # the fallback's parameters trained too


def test_stock_attention_is_reported_and_its_projections_left_to_the_fallback():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(8, 2)
            self.head = torch.nn.Linear(8, 3)

    pre = kronfac.Preconditioner(Block())
    assert [b[0] for b in pre.registration.blocks] == ["head"]
    fallback = {name: hint for name, _, hint in pre.registration.fallback}
    assert set(fallback) == {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias"}
    assert all(h == "use kronfac.nn.replace_attention(model)" for h in fallback.values())


def test_tied_weights_are_refused_naming_both_modules():
    model = mlp()
    tied = torch.nn.Linear(6, 5)
    tied.weight = model[0].weight
    model.append(tied)
    with pytest.raises(RuntimeError, match="layers '0' and '3' share a parameter \\(tied weights\\)"):
        kronfac.Preconditioner(model)


def gradients(model):
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("fisher", ["sampled", "empirical"])
def test_the_shared_forward_gives_the_separate_passs_statistics(fisher):
    x, y = data()
    runs = []
    for shared in (False, True):
        model = mlp()
        pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy", fisher=fisher, refresh_period=1)
        for _ in range(3):
            model.zero_grad()
            if shared:
                assert pre.capture_forward()
                out = model(x)
                F.cross_entropy(out, y).backward(retain_graph=True)
                pre.statistics_from_forward(out, targets=y if fisher == "empirical" else None)
            else:
                pre.update_statistics(x, targets=y if fisher == "empirical" else None)
                F.cross_entropy(model(x), y).backward()
            pre.step()
            with torch.no_grad():
                for p in model.parameters():
                    p.sub_(0.1 * p.grad)
        runs.append(gradients(model))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_capture_backward_is_the_empirical_fisher_of_the_training_backward():
    x, y = data()
    runs = []
    for protocol in ("backward", "pass"):
        model = mlp()
        pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy", fisher="empirical", refresh_period=1)
        model.zero_grad()
        if protocol == "backward":
            assert pre.capture_backward(grad_scale=x.shape[0])
        else:
            pre.update_statistics(x, targets=y)
        F.cross_entropy(model(x), y).backward()
        stats = pre.step()
        assert stats.statistics_updated and stats.refreshed
        runs.append(gradients(model))
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)  # float32: the two sums round differently


def test_capture_backward_with_loss_terms_is_the_empirical_fisher_of_a_loss_per_position():
    # A loss per token (F.cross_entropy over [B*T, C], kronfac.loss on [B, T, C]) averages B*T terms: loss_terms gives
    # capture_backward that scale; the batch size alone would leave G short by T**2.
    torch.manual_seed(5)
    x, y = torch.randn(6, 4, 5), torch.randint(0, 3, (6, 4))
    assert kronfac.loss_terms(y, "softmax-cross-entropy") == 24
    assert kronfac.loss_terms(torch.randn(6, 2), "squared-error") == 6
    runs = []
    for scale in ("loss_terms", "pass", "batch", "ordinary loop"):
        torch.manual_seed(6)
        model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy", fisher="empirical", refresh_period=1,
                                     damping=1e-3)
        model.zero_grad()
        if scale == "pass":
            pre.update_statistics(x, targets=y)
        elif scale != "ordinary loop":  # the automatic capture takes the scale from the logits' shape
            assert pre.capture_backward(kronfac.loss_terms(y, "softmax-cross-entropy") if scale == "loss_terms" else 6)
        F.cross_entropy(model(x).reshape(-1, 3), y.reshape(-1)).backward()
        pre.step()
        runs.append(gradients(model))
    for run in (runs[0], runs[3]):
        for a, b in zip(run, runs[1]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert any((a - b).abs().max() > 1e-3 * a.abs().max() for a, b in zip(runs[2], runs[1]))


def test_hooks_exist_only_while_capturing():
    model = mlp()
    pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy", stats_period=2)
    x, y = data()
    # The model's own forward hook is the automatic capture's, there as long as the preconditioner is.
    hooks = lambda: sum(len(m._forward_hooks) for m in model.modules() if m is not model)  # noqa: E731
    assert len(model._forward_hooks) == 1 and len(model._forward_pre_hooks) == 1
    assert pre.capture_forward() and hooks() == 2
    out = model(x)
    F.cross_entropy(out, y).backward(retain_graph=True)
    pre.statistics_from_forward(out)
    assert hooks() == 0
    pre.step()
    assert not pre.is_statistics_step() and not pre.capture_forward() and not pre.update_statistics(x)
    assert hooks() == 0
    del pre
    gc.collect()
    assert not model._forward_hooks and not model._forward_pre_hooks


def test_the_preconditioner_alone_rewrites_grad_for_any_torch_optimizer():
    model = mlp()
    pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy", damping=1e-2)
    x, y = data()
    pre.update_statistics(x)
    F.cross_entropy(model(x), y).backward()
    raw = gradients(model)
    matrices = pre.core.gradient_matrices()
    stats = pre.step()
    assert isinstance(stats, kronfac.StepStats) and stats.statistics_updated and not stats.skipped
    expected = pre.core.precondition(matrices)  # the core's direction, as [d_G, d_A] (bias last column)
    got = gradients(model)
    assert not torch.equal(got[0], raw[0])
    torch.testing.assert_close(torch.cat([got[0], got[1][:, None]], 1), expected[0])
    # Adam follows the rewritten gradient.
    adam = torch.optim.Adam(model.parameters(), lr=1e-2)
    adam.step()
    assert stats.grad_dot_direction > 0


@pytest.mark.parametrize("method", ["kfac", "ekfac"])
def test_statistics_products_in_bfloat16_are_close_to_float32_and_not_equal(method):
    def direction(precision):
        model = mlp()
        pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy", method=method, damping=1e-2,
                                     refresh_period=1, statistics_precision=precision)
        x, y = data()
        for _ in range(3):  # EKFAC's spectrum needs a basis first
            model.zero_grad()
            pre.update_statistics(x)
            F.cross_entropy(model(x), y).backward()
            pre.step()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    exact, low = direction("factor"), direction("bfloat16")
    error = ((low - exact).norm() / exact.norm()).item()
    assert 1e-6 < error < 4e-2
    with pytest.raises(ValueError, match="bfloat32"):
        kronfac.Preconditioner(mlp(), statistics_precision="bfloat32")


def test_the_quadratic_model_rule_trains_and_adapts_its_damping():
    model = mlp()
    opt = kronfac.QModelOptimizer(model, loss="softmax-cross-entropy", lambda_period=1, initial_lambda=1.0)
    x, y = data()
    losses = []
    for _ in range(10):
        opt.update_statistics(x)
        model.zero_grad()
        out = model(x)
        value = F.cross_entropy(out, y)
        value.backward(retain_graph=True)
        stats = opt.step(out, value.item(), lambda: F.cross_entropy(model(x), y).item())
        losses.append(value.item())
    assert losses[-1] < 0.7 * losses[0]
    assert stats.lambda_ != 1.0 and opt.lambda_ == stats.lambda_
    with pytest.raises(ValueError, match="unknown option 'lambda_perod'; did you mean 'lambda_period'"):
        kronfac.QModelOptimizer(model, loss="softmax-cross-entropy", lambda_perod=1)
    # Keywords of the preconditioner with a preconditioner passed in would be ignored: refused, by name.
    pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy")
    with pytest.raises(ValueError, match=r"options \['damping'\] belong to the preconditioner passed in"):
        kronfac.QModelOptimizer(model, loss="softmax-cross-entropy", preconditioner=pre, damping=0.5)
    with pytest.raises(ValueError, match=r"options \['damping'\] belong to the preconditioner passed in"):
        kronfac.KFACOptimizer(model, loss="softmax-cross-entropy", preconditioner=pre, damping=0.5)


def test_a_huge_factor_side_is_diagonal_and_the_report_says_so():
    # pytorch/examples' MNIST CNN has Linear(9216, 128): a 9217-row input factor is O(n^3) to refresh. Above
    # factor_full_max_dim (2048) that side keeps only its diagonal, and the report names the layer.
    model = torch.nn.Sequential(torch.nn.Linear(3000, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    pre = kronfac.Preconditioner(model)
    assert pre.registration.blocks[0][3:] == ("A 3001 diagonal x G 8", (3001 + 64) * 4)
    assert "diagonal above factor_full_max_dim: '0' (A 3001 diagonal x G 8)" in str(pre.registration)
    assert pre.registration.details().splitlines()[1] == "2: Linear (expand), A 9 x G 2, 340 B"
    full = kronfac.Preconditioner(model, factor_full_max_dim=0)
    assert full.registration.blocks[0][3] == "A 3001 x G 8" and "diagonal" not in str(full.registration)


def test_a_layer_may_take_its_own_weight_sharing():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    pre = kronfac.Preconditioner(model, layer_weight_sharing={"2": "reduce"})
    assert [b[:3] for b in pre.registration.blocks] == [("0", "Linear", "expand"), ("2", "Linear", "reduce")]
    with pytest.raises(ValueError, match="names '3', which is not a registered layer"):
        kronfac.Preconditioner(model, layer_weight_sharing={"3": "reduce"})
    with pytest.raises(RuntimeError, match="reduc"):
        kronfac.Preconditioner(model, layer_weight_sharing={"2": "reduc"})


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("padding,kernel,covered", [("same", 3, True), ("valid", 3, True), ("same", 2, False),
                                                    ((1, 0), 3, True)])
def test_conv2d_padding_forms(padding, kernel, covered):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 2, kernel, padding=padding)
    x = torch.randn(4, 1, 5, 5)
    model = torch.nn.Sequential(conv, torch.nn.Flatten(), torch.nn.Linear(conv(x)[0].numel(), 3))
    pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy", refresh_period=1)
    assert [b[1] for b in pre.registration.blocks] == (["Conv2d", "Linear"] if covered else ["Linear"])
    pre.update_statistics(x)
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 0])).backward()
    assert not pre.step().skipped  # the core's Conv2d geometry agrees with the module's output grid


def test_frozen_layers_are_left_alone_and_reported():
    model = mlp()
    model[0].requires_grad_(False)  # fine-tuning the head only
    opt = kronfac.KFACOptimizer(model, params=model[2].parameters(), loss="softmax-cross-entropy")
    registration = opt.preconditioner.registration
    assert str(registration) == "registered 1 block: 1 Linear (expand); no fallback parameters; frozen: 0.weight, 0.bias"
    assert registration.frozen == ["0.weight", "0.bias"]
    x, y = data()
    frozen = model[0].weight.detach().clone()
    opt.update_statistics(x)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert torch.equal(model[0].weight, frozen) and not opt.last_stats.skipped


def test_excluded_layers_get_the_fallback_and_no_hooks():
    model = mlp()
    opt = kronfac.KFACOptimizer(model, lr=0.1, loss="softmax-cross-entropy", exclude="^2$", fallback="adam")
    registration = opt.preconditioner.registration
    assert registration.excluded == ["2"]
    assert [b[0] for b in registration.blocks] == ["0"]
    assert [f[0] for f in registration.fallback] == ["2.weight", "2.bias"]
    assert [layer.name for layer in opt.preconditioner.layers] == ["0"]
    x, y = data()
    before = model[2].weight.detach().clone()
    opt.update_statistics(x)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert not opt.last_stats.skipped and not torch.equal(model[2].weight, before)
    with pytest.raises(ValueError, match="is not a regular expression"):
        kronfac.KFACOptimizer(mlp(), loss="softmax-cross-entropy", exclude="(")


def test_only_the_optimized_parameters_get_blocks():
    model = mlp()  # nothing frozen: the first layer is simply not optimized
    opt = kronfac.KFACOptimizer(model, params=model[2].parameters(), loss="softmax-cross-entropy")
    assert str(opt.preconditioner.registration) == "registered 1 block: 1 Linear (expand); no fallback parameters"
    assert [layer.name for layer in opt.preconditioner.layers] == ["2"]
    x, y = data()
    first = model[0].weight.detach().clone()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert torch.equal(model[0].weight, first) and opt.last_stats.statistics_updated
    model = mlp()  # parameter groups count as their union
    groups = kronfac.KFACOptimizer(model, params=[{"params": model[0].parameters(), "lr": 0.01},
                                               {"params": list(model[2].parameters())}], loss="softmax-cross-entropy")
    assert [layer.name for layer in groups.preconditioner.layers] == ["0", "2"]


def test_configure_runtime_reports_what_it_set():
    # threads and subnormals left as they are: the other tests' numerics must not change
    report = kronfac.configure_runtime(threads=-1, flush_subnormals=False, keep_freed_memory=True)
    assert "LibTorch:" in report and "Freed memory:" in report
    if "not glibc" not in report:
        assert "Freed memory:    kept for reuse" in report


