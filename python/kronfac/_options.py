"""Keywords from the C++ option tables: the same names, defaults and ranges as the C++ API, the CLI and TOML."""
import torch

from . import _kfac


def option_specs(table="preconditioner"):
    """The options of ``table`` ("preconditioner", "optimizer" or "qmodel"), each a dict with name, block, doc,
    type, default (and default_text, as the CLI and TOML write it), range, choices and nullable."""
    return _kfac.option_specs(table)


def names(table):
    return [s["name"] for s in _kfac.option_specs(table)]


def python_value(value, name="option"):
    """A keyword's value as the tables take it: a torch.dtype by its name ("float64"). An int beyond 64 bits is
    refused here, by name (the core's conversion could only say it cannot cast)."""
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**64:
        raise ValueError(f"kronfac: {name}={value} does not fit in 64 bits; see kronfac.option_specs() for its range")
    return value


def split(keywords, table):
    """(keywords of `table`, the preconditioner's keywords): unknown names raise ValueError in the core."""
    own = set(names(table))
    mine = {k: python_value(v, k) for k, v in keywords.items() if k in own}
    rest = {k: python_value(v, k) for k, v in keywords.items() if k not in own}
    return mine, rest


# PyTorch's loss names, as the likelihood each one is the negative log of. "nll" (F.nll_loss after log_softmax):
# log-probabilities are logits of the same distribution (softmax(log_softmax(z)) = softmax(z)), and the Fisher
# with respect to them is the logits' (diag(p) - p p^T annihilates log_softmax's Jacobian's extra term).
TORCH_LOSSES = {
    "cross-entropy": "softmax-cross-entropy",
    "nll": "softmax-cross-entropy",
    "nll-loss": "softmax-cross-entropy",
    "binary-cross-entropy-with-logits": "sigmoid-cross-entropy",
    "bce-with-logits": "sigmoid-cross-entropy",
    "mse": "squared-error",
    "mse-loss": "squared-error",
}


def loss_name(name):
    """The registered likelihood's name; underscores may stand for dashes (softmax_cross_entropy), and PyTorch's
    names (cross_entropy, nll, bce_with_logits, mse, ...) for the likelihood they are the negative log of."""
    if name is None:
        return None
    name = name.replace("_", "-")
    return _kfac.loss_name(TORCH_LOSSES.get(name, name))


def docs(tables):
    """The keyword list of a docstring, generated from the tables."""
    lines = []
    for table in tables:
        block = None
        for s in _kfac.option_specs(table):
            if s["block"] != block:
                block = s["block"]
                lines.append("")
                lines.append(f"    [{block or 'method'}]")
            rng = f"; {s['range']}" if s["range"] else ""
            lines.append(f"    {s['name']} = {s['default']!r}{rng}")
            lines.append(f"        {s['doc']}")
    return "\n".join(lines)

