"""Python's layer kinds are the C++ core's: every kind the core registers covers its torch.nn class here, and on
one table of module configurations (tests/layers/kind_configurations.json, which the C++ suite checks through
kfac::nn's stand-ins) torch.nn's modules are accepted and refused alike, for the same reasons."""
import json
import pathlib

import pytest
import torch

import kronfac
from kronfac import _kfac

TABLE = json.loads((pathlib.Path(__file__).resolve().parents[2] / "tests" / "layers" /
                    "kind_configurations.json").read_text())["cases"]


def module_class(kind):
    return kronfac.nn.RMSNorm if kind == "RMSNorm" else getattr(torch.nn, kind)


def build(case):
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in case["args"].items()}
    return module_class(case["kind"])(**args)


@pytest.mark.parametrize("case", TABLE, ids=[f"{c['kind']}-{i}" for i, c in enumerate(TABLE)])
def test_torch_modules_decide_as_the_table_says(case):
    layer, reason = kronfac.layers.make_layer("m", build(case))
    if "refused" in case:
        assert layer is None and case["refused"] in reason, reason
    else:
        assert reason is None and layer.kind == case["kind"]


def test_every_core_kind_is_covered_and_in_the_table():
    accepted = {c["kind"] for c in TABLE if "refused" not in c}
    registered = kronfac.registered_module_kinds()
    for kind in _kfac.layer_kinds():
        assert kind["name"] in accepted, kind["name"]
        assert module_class(kind["name"]) in registered, kind["name"]


def test_a_refused_module_gets_the_fallback_and_the_report_says_why():
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, groups=2), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy")
    hints = {name: hint for name, _, hint in pre.registration.fallback}
    assert hints["0.weight"] == "groups 2: K-FAC supports groups 1 only", hints
    assert [layer.name for layer in pre.layers] == ["2"]
