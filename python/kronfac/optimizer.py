"""kronfac.KFACOptimizer (a torch.optim.Optimizer) and kronfac.QModelOptimizer, over the C++ core's step rules."""
import torch

from . import _kfac, _options, _state
from .preconditioner import Preconditioner


class KFACOptimizer(_state.CoreOwned, _state.CoreOptimizerState, torch.optim.Optimizer):
    """K-FAC as a torch.optim.Optimizer: the preconditioner's direction, KL-clipped (Ba, Grosse & Martens 2017),
    followed with heavy-ball momentum and weight decay; the update itself is the C++ core's kfac::KfacOptimizer::step,
    so a run equals the C++ API's bit for bit::

        opt = kronfac.KFACOptimizer(model, lr=0.05, damping=1e-2, loss="softmax-cross-entropy", method="ekfac")
        for x, y in batches:              # the ordinary loop: statistics from your own forward (see Preconditioner)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()                    # opt.last_stats: a kronfac.StepStats

    ``params`` (default: model.parameters()) may be parameter groups, each with its own lr, momentum and
    weight_decay; the KL clip (one factor for the step) reads the first group's lr and kl_clip. LR schedulers drive
    the groups' lr as usual. ``state_dict()`` holds the momentum and the whole preconditioner state: loading it and
    continuing equals an uninterrupted run. ``preconditioner``: a kronfac.Preconditioner to use instead of building one
    (then pass its options to it). The statistics protocols (update_statistics, capture_forward +
    statistics_from_forward, capture_backward) are the preconditioner's. Unknown or invalid keywords raise
    ValueError naming them and the closest valid spelling.

    Options (name = default; range):
    """

    def __init__(self, model, params=None, loss=None, preconditioner=None, communicator=None, **options):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"kronfac.KFACOptimizer(model, ...) needs the model itself (a torch.nn.Module), got "
                            f"{type(model).__name__}: K-FAC reads its layers. To optimize only some parameters, "
                            "pass them too: KFACOptimizer(model, params=...)")
        mine, rest = _options.split(options, "optimizer")
        defaults = _kfac.optimizer_options(mine)
        params = [dict(g, params=[g["params"]] if torch.is_tensor(g["params"]) else list(g["params"]))
                  if isinstance(g, dict) else g for g in (model.parameters() if params is None else params)]
        if preconditioner is None:  # blocks for the optimized parameters only
            flat = [q for g in params for q in (g["params"] if isinstance(g, dict) else [g])]
            preconditioner = Preconditioner(model, loss=loss, communicator=communicator, params=flat, **rest)
        elif rest:
            raise ValueError(f"kronfac.KFACOptimizer: options {sorted(rest)} belong to the preconditioner passed in; "
                             "set them when building it")
        self.preconditioner = preconditioner
        self._keys = list(defaults)
        super().__init__(params, defaults)
        self._core = _kfac.KfacOptimizerCore([g["params"] for g in self.param_groups],
                                             [self._group_options(g) for g in self.param_groups], preconditioner.core)
        self.last_stats = None

    def _group_options(self, group):
        return {k: _options.python_value(group[k], k) for k in self._keys}

    def add_param_group(self, param_group):
        """Refused after construction (NotImplementedError): the C++ core holds the groups; pass them all in params."""
        if hasattr(self, "_core"):
            raise NotImplementedError("kronfac.KFACOptimizer: parameter groups are fixed at construction (the core "
                                      "holds them); pass every group in params=")
        super().add_param_group(param_group)

    # The preconditioner's statistics protocols.
    def update_statistics(self, *inputs, targets=None, forward=None, loss=None, **kwargs):
        """The preconditioner's separate statistics pass (kronfac.Preconditioner.update_statistics)."""
        return self.preconditioner.update_statistics(*inputs, targets=targets, forward=forward, loss=loss, **kwargs)

    def capture_forward(self):
        """The preconditioner's shared-forward protocol (kronfac.Preconditioner.capture_forward)."""
        return self.preconditioner.capture_forward()

    def statistics_from_forward(self, output, targets=None, loss=None):
        """The preconditioner's shared-forward protocol (kronfac.Preconditioner.statistics_from_forward)."""
        return self.preconditioner.statistics_from_forward(output, targets, loss)

    def capture_backward(self, grad_scale):
        """The preconditioner's empirical-Fisher protocol (kronfac.Preconditioner.capture_backward)."""
        return self.preconditioner.capture_backward(grad_scale)

    def step(self, closure=None):
        """One update (after the statistics pass, if due, and the backward). Returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.preconditioner._end_capture()
        for i, group in enumerate(self.param_groups):
            self._core.set_group_options(i, self._group_options(group))
        self.last_stats = self._core.step()
        return loss


KFACOptimizer.__doc__ += _options.docs(["optimizer", "preconditioner"])


class QModelOptimizer(_state.CoreOwned):
    """The K-FAC paper's quadratic-model step rule (Martens & Grosse 2015, sections 6-7; kfac::QModelOptimizer): the
    update alpha*Delta + mu*delta0 minimising the exact quadratic model on the minibatch, with Levenberg-Marquardt
    lambda and gamma adapted. Every trainable parameter must be in a K-FAC layer (no fallback)::

        opt = kronfac.QModelOptimizer(model, loss="softmax-cross-entropy")
        for x, y in batches:
            opt.update_statistics(x)
            model.zero_grad()
            out = model(x)
            value = F.cross_entropy(out, y)
            value.backward(retain_graph=True)
            opt.step(out, value.item(), lambda: F.cross_entropy(model(x), y).item())

    Options (name = default; range):
    """

    def __init__(self, model, loss, preconditioner=None, communicator=None, **options):
        mine, rest = _options.split(options, "qmodel")
        if preconditioner is not None and rest:
            raise ValueError(f"kronfac.QModelOptimizer: options {sorted(rest)} belong to the preconditioner passed in; "
                             "set them when building it")
        self.preconditioner = preconditioner or Preconditioner(model, loss=loss, communicator=communicator, **rest)
        self.loss = _options.loss_name(loss)
        self._core = _kfac.QModelCore(self.preconditioner.core, mine)

    def update_statistics(self, *inputs, targets=None, forward=None, **kwargs):
        """The preconditioner's separate statistics pass (kronfac.Preconditioner.update_statistics)."""
        return self.preconditioner.update_statistics(*inputs, targets=targets, forward=forward, loss=self.loss,
                                                     **kwargs)

    def step(self, output, loss_value, evaluate):
        """One update from the batch's ``output`` (graph kept, backward done with retain_graph), its loss value and
        ``evaluate()``, the loss on the same batch at the current parameters. Returns the core's QModelStats."""
        self.preconditioner._end_capture()
        return self._core.step(output, self.loss, float(loss_value), evaluate)

    @property
    def lambda_(self):
        """The Levenberg-Marquardt damping lambda, adapted every lambda_period steps."""
        return self._core.lambda_

    @property
    def gamma(self):
        """The factored damping gamma, adapted by the greedy search every gamma_period steps."""
        return self._core.gamma

    def state_dict(self):
        """The optimizer's whole state (lambda, gamma, the previous update, the preconditioner), with its CRC-32."""
        return {"kfac": _state.pack(self._core.save(), "QModelOptimizer")}

    def load_state_dict(self, state):
        """Loads a state_dict(), its CRC-32 checked before anything changes."""
        self._core.load(_state.unpack(state.get("kfac"), "QModelOptimizer"))


QModelOptimizer.__doc__ += _options.docs(["qmodel", "preconditioner"])
