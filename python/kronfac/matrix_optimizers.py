"""kronfac.Muon, kronfac.Shampoo and kronfac.SOAP: the optimizers a user would pick instead of K-FAC, as
torch.optim.Optimizers over the C++ core (kfac::Muon, kfac::Shampoo, kfac::Soap), so that a run equals the C++
API's bit for bit. They drop into an ordinary loop in place of torch.optim.AdamW::

    opt = kronfac.SOAP(model.parameters(), lr=3e-3)
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

Parameter groups, LR schedulers and state_dict() work as for any torch.optim.Optimizer. A step whose gradient or
update is not finite changes nothing (opt.last_stats.skipped, with the reason in .messages). Data-parallel training
averages the gradients first, as DistributedDataParallel does.
"""
import torch

from . import _kfac, _options, _state


class _CoreOptimizer(_state.CoreOwned, _state.CoreOptimizerState, torch.optim.Optimizer):
    _method = None  # the option table and the core's method: "muon", "shampoo", "soap"

    def __init__(self, params, defaults):
        defaults = _kfac.block_defaults(self._method, _values(defaults))
        super().__init__(params, defaults)
        self._keys = list(defaults)
        for group in self.param_groups:  # unknown keys raise naming the closest option
            _kfac.block_defaults(self._method, _values({k: v for k, v in group.items()
                                                        if k not in ("params", "initial_lr", "name")}))
        self._core = _kfac.ParameterwiseCore(self._method, [g["params"] for g in self.param_groups],
                                             [self._group_options(g) for g in self.param_groups])
        self.last_stats = None

    def _group_options(self, group):
        return {k: _options.python_value(group[k], k) for k in self._keys}

    def add_param_group(self, param_group):
        """Refused after construction (NotImplementedError): the C++ core holds the groups; pass them all in params."""
        if hasattr(self, "_core"):
            raise NotImplementedError(f"kronfac.{type(self).__name__}: parameter groups are fixed at construction "
                                      "(the core holds them); pass every group in params")
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure=None):
        """One update from the gradients in .grad. Returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for i, group in enumerate(self.param_groups):
            self._core.set_group_options(i, self._group_options(group))
        self.last_stats = self._core.step()
        return loss


def _values(options):
    return {k: _options.python_value(v, k) for k, v in options.items()}


def muon_split(model):
    """(orthogonalized, adamw, report): ``model``'s parameters split the way Muon recipes split them, by the C++
    core's rule (kfac::muon_split): hidden weight matrices are orthogonalized; embeddings (torch.nn.Embedding), the
    output head (the last module holding a matrix) and every parameter of dim < 2 go to AdamW."""
    described = []
    for index, (name, module) in enumerate(model.named_modules()):
        embedding = isinstance(module, torch.nn.Embedding)
        for pname, p in module.named_parameters(recurse=False):
            described.append((f"{name}.{pname}" if name else pname, p, embedding, index))
    return _kfac.muon_split(described)


class Muon(_CoreOptimizer):
    """Muon (Jordan et al. 2024; torch.optim.Muon): momentum orthogonalized by a Newton-Schulz iteration, for
    hidden weight matrices (kfac::Muon; the math is in kfac/optim/muon.h).

    ``kronfac.Muon(model, lr=0.02, adamw_lr=1e-3)`` splits the model as every Muon recipe does (kronfac.muon_split; the
    split is in ``opt.split_report``): its hidden matrices are orthogonalized, its embeddings, output head, biases
    and gains take AdamW at ``adamw_lr`` (a group with orthogonalize=False). ``kronfac.Muon(params, ...)`` takes
    parameters or groups as any optimizer does; a group that is not orthogonalize=False must hold matrices only.

    Options (name = default; range):
    """
    _method = "muon"

    def __init__(self, params, adamw_lr=1e-3, **options):
        self.split_report = None
        if isinstance(params, torch.nn.Module):
            orthogonalized, adamw, self.split_report = muon_split(params)
            params = [g for g in ({"params": orthogonalized},
                                  {"params": adamw, "orthogonalize": False, "lr": adamw_lr}) if g["params"]]
        super().__init__(params, options)


class Shampoo(_CoreOptimizer):
    """Shampoo (Gupta et al. 2018) as Distributed Shampoo runs it: per-tile Kronecker factors of the gradient,
    inverse fourth roots refreshed every precondition_frequency steps, the step's size grafted from Adam
    (kfac::Shampoo; the math is in kfac/optim/shampoo.h). Vectors take Adam's step.

    Options (name = default; range):
    """
    _method = "shampoo"

    def __init__(self, params, **options):
        super().__init__(params, options)


class SOAP(_CoreOptimizer):
    """SOAP (Vyas et al., ICLR 2025): Adam in the eigenbasis of Shampoo's factors, refreshed every
    precondition_frequency steps by one power iteration and a QR, as published (kfac::Soap; the math is in
    kfac/optim/soap.h). The first step builds the bases and leaves the weights unchanged, as published.

    Options (name = default; range):
    """
    _method = "soap"

    def __init__(self, params, **options):
        super().__init__(params, options)


Muon.__doc__ += _options.docs(["muon"])
Shampoo.__doc__ += _options.docs(["shampoo"])
SOAP.__doc__ += _options.docs(["soap"])
