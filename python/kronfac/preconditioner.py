"""kronfac.Preconditioner: the C++ core's preconditioner on a torch.nn.Module, with capture by forward hooks."""
import contextlib
import difflib
import warnings
import weakref

import torch

from . import _kfac, _options, _state, distributed as _distributed, layers as _layers, runtime as _runtime

_separate_passes = [0]  # separate statistics passes running now: their forwards are no training forward to capture


class Preconditioner(_state.CoreOwned):
    """The K-FAC-family preconditioner of a torch.nn.Module: registers every module a layer kind covers
    (torch.nn.Linear on inputs of any rank, Conv2d, Conv1d, Embedding, LayerNorm, BatchNorm2d, GroupNorm, RMSNorm;
    kronfac.register_module_kind adds more), gives every other parameter the fallback (option ``fallback``), and rewrites the registered
    parameters' ``.grad`` into the preconditioned direction in ``step()``, so that any torch.optim optimizer can
    follow it::

        pre = kronfac.Preconditioner(model, loss="softmax-cross-entropy", damping=1e-3)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for x, y in batches:
            pre.update_statistics(x)          # no-op off statistics steps
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            stats = pre.step()                # a kronfac.StepStats
            if not stats.skipped:
                opt.step()

    Statistics come from one of three protocols, as in C++: ``update_statistics`` (a separate forward on the first
    ceil(stats_fraction * B) examples, targets sampled from the model, or the labels with fisher="empirical");
    ``capture_forward`` + ``statistics_from_forward`` (the training forward shared); ``capture_backward`` (the
    training backward's gradients: the empirical Fisher at no extra pass). Forward hooks are installed on the
    registered modules on statistics steps only, and removed once the capture is over.

    The ordinary loop needs none of them. Until one is called, the first training-mode forward of ``model`` with
    gradients enabled on a statistics step is captured: with ``loss`` given, its output's sampled targets are
    back-propagated through the retained graph (the true Fisher, the shared-forward protocol: one extra backward, no
    extra forward); with fisher="empirical", the loss's own backward is, scaled by the terms the loss averages
    (``kronfac.loss_terms``: the batch size, or batch x positions for ``loss`` per position on logits [B, T, C]);
    without ``loss``, the loss's own backward too, scaled by the input's batch size, right for a loss averaged over
    examples (a warning says so once). A loss averaged otherwise needs its own scale: call ``capture_backward``.

    The statistics pass leaves the model as the user's loop would: BatchNorm running statistics are restored after a
    separate forward, whose dropout draws from a random stream of its own, and targets are sampled from the core's
    generator (seeded by the step), so the user's random stream, and with it the training forward's dropout masks,
    is unchanged.

    Arguments: ``model``; ``loss``, the likelihood of the model's output: PyTorch's names (cross_entropy for logits,
    nll for log-probabilities: the same softmax Fisher, bce_with_logits, mse) or the library's
    (softmax-cross-entropy, sigmoid-cross-entropy, squared-error, a registered one); ``output``, how to get that
    tensor from what the model returns when it is not a tensor: an index (tuples), a key (dicts, Hugging Face
    outputs) or a callable; ``communicator`` for a data-parallel run: by default torch.distributed's default group
    when it is initialized with several processes, or a torch.distributed process group, or
    kronfac.connect_from_environment() (kronfac's own launcher); ``layer_weight_sharing``, a dict
    from module names to "expand" or "reduce" for layers that differ from the option weight_sharing; ``params``, the
    parameters to precondition when not all of the model's are (KFACOptimizer passes its own): modules with none of
    them get no block, no statistics and no fallback; and every option below.
    Unknown or invalid keywords raise ValueError naming them and the closest valid spelling.

    Options (name = default; range):
    """

    def __init__(self, model, loss=None, communicator=None, layer_weight_sharing=None, params=None, output=None,
                 **options):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"kronfac.Preconditioner needs a torch.nn.Module, got {type(model).__name__}")
        if output is not None and not (callable(output) or isinstance(output, (int, str))):
            raise TypeError(f"kronfac: output= takes an index, a key or a callable, got {type(output).__name__}")
        _runtime.advise(model)
        self.model = model
        self.loss = _options.loss_name(loss)
        self._output = output
        self._communicator = _distributed.resolve(communicator)  # held here: its Python methods serve the core
        self._pass_streams = None  # the statistics pass's random stream: CPU state, {CUDA device: state}
        opts = _kfac.PreconditionerOptions({k: _options.python_value(v, k) for k, v in options.items()})
        only = None if params is None else {id(p) for p in params}  # the parameters to precondition
        self._modules = []  # (module, core layer) of each registered layer
        views = []
        skipped = []  # prefixes of modules whose children are not called as modules
        for name, module in model.named_modules():
            inside = any(name.startswith(p + ".") for p in skipped)
            layer, hint = (None, None) if inside else _layers.make_layer(name, module)
            own = list(module.named_parameters(recurse=False))
            if only is not None:  # a module none of whose parameters is optimized gets no block and no fallback
                if layer is not None and not any(id(p) in only for _, p in own):
                    layer, hint = None, None
                own = [(n, p) for n, p in own if id(p) in only or not p.requires_grad]  # frozen: reported
            if layer is not None:
                self._modules.append((module, layer))
            elif not inside and _layers.opaque(module):
                skipped.append(name)
            kind = type(module)
            views.append((name, f"{kind.__module__}.{kind.__qualname__}", hint or "", own))
        if not self._modules:  # the core would say this in C++ terms
            kinds = ", ".join(t.__name__ for t in _layers.registered_module_kinds())
            raise ValueError(f"kronfac: no module of this {type(model).__name__} has a K-FAC block (the kinds: {kinds}; "
                             "kronfac.register_module_kind adds more; torch.nn.MultiheadAttention needs "
                             "kronfac.nn.replace_attention(model) first)" + (" among the parameters passed in params="
                                                                           if only is not None else ""))
        self._buffers_made = {id(m): {n: b for n, b in m._buffers.items() if b is not None} for m, _ in self._modules}
        self._set_weight_sharing(layer_weight_sharing or {})
        self.core = _kfac.PreconditionerCore([l for _, l in self._modules], views, opts, self._communicator)
        excluded = set(self.core.registration.excluded)  # the option exclude: no block, so no hook either
        self._modules = [(m, layer) for m, layer in self._modules if layer.name not in excluded]
        self._explicit = False  # a protocol was called: no automatic capture from then on
        self._auto = None       # "forward" / "backward" while an automatic capture is armed
        self._auto_taken = False  # this step's forward was captured automatically
        self._empirical = options.get("fisher") == "empirical"
        # Hooks on the model itself, holding the preconditioner weakly: they end with it.
        me = weakref.ref(self)
        handles = [model.register_forward_pre_hook(lambda m, i: me() and me()._auto_arm(i)),
                   model.register_forward_hook(lambda m, i, o: me() and me()._auto_capture(o))]
        weakref.finalize(self, lambda: [h.remove() for h in handles])
        self._hooks = []

    def _set_weight_sharing(self, flavours):
        layers = {layer.name: layer for _, layer in self._modules}
        for name, flavour in flavours.items():
            if name not in layers:
                close = difflib.get_close_matches(name, list(layers), n=1)
                raise ValueError(f"kronfac: layer_weight_sharing names '{name}', which is not a registered layer"
                                 + (f"; did you mean '{close[0]}'?" if close else f" (the layers: {sorted(layers)})"))
            layers[name].weight_sharing = flavour

    # -- capture -------------------------------------------------------------------------------------------------
    def _arm_hooks(self):
        self._remove_hooks()
        for module, layer in self._modules:
            def hook(m, inputs, output, layer=layer):
                self._rebind_buffers(m)
                layer.tap(inputs[0], output, m.training)
            self._hooks.append(module.register_forward_hook(hook))

    def _rebind_buffers(self, module):
        """The core's kind holds the module's buffers (BatchNorm's running statistics, read in eval mode) as they were
        when the layer was made. model.to(...), .cuda() or .double() after that replaces them with new tensors; the
        held ones then take the new data (as torch.nn.Module._apply does for parameters) and go back into the
        module, so that the kind and the module's own updates share them again."""
        for name, made in self._buffers_made[id(module)].items():
            current = module._buffers.get(name)
            if current is not made and current is not None:
                made.data = current
                module._buffers[name] = made

    def _auto_arm(self, inputs):
        if (self._explicit or self._hooks or _separate_passes[0] or not torch.is_grad_enabled() or self._auto_taken
                or not self.core.is_statistics_step()):
            return
        self._warn_eval()
        if self.loss is None or self._empirical:  # the loss's own backward: its gradients are the empirical Fisher's
            first = inputs[0] if inputs and torch.is_tensor(inputs[0]) and inputs[0].dim() > 0 else None
            if not self.core.capture_backward(float(first.shape[0] if first is not None else 1)):
                return
            if self.loss is None:
                warnings.warn("kronfac: no loss= was given, so K-FAC's statistics come from your loss's backward (the "
                              "empirical Fisher, for a mean-reduced loss); pass loss=\"softmax-cross-entropy\" "
                              "(or \"nll\", \"mse\", ...) for the true Fisher", stacklevel=4)
            self._auto = "backward"
        else:
            if not self.core.capture_forward():
                return
            self._auto = "forward"
        self._auto_taken = True
        self._arm_hooks()

    def _auto_capture(self, output):
        mode, self._auto = self._auto, None
        if mode is None:
            return
        self._remove_hooks()  # the backward capture keeps its gradient hooks on the outputs
        if mode == "forward":
            self.core.statistics_from_forward(self._select(output), self.loss, None)
        elif self.loss is not None:
            # The loss averages over the terms its targets hold: for a loss per position (logits [B, T, C]) B*T, which
            # only the output tells; its targets have the output's shape less the class dimension.
            logits = self._select(output)
            if logits.dim() >= 2:
                self.core.set_capture_scale(float(_kfac.loss_terms(logits.detach()[..., 0], self.loss)))

    def _select(self, output):
        """The tensor the likelihood reads, from what the model returned (the option ``output``)."""
        chosen = output if self._output is None else (
            self._output(output) if callable(self._output) else output[self._output])
        if not torch.is_tensor(chosen):
            raise TypeError(f"kronfac: the model returned a {type(chosen).__name__}, and K-FAC's statistics need the "
                            "tensor its loss reads: pass output= to the optimizer (an index such as 0, a key such as "
                            "'logits', or a callable)")
        return chosen

    def _warn_eval(self):
        if not self.model.training:
            warnings.warn("kronfac: the model is in eval mode during a statistics step, so K-FAC's statistics see "
                          "eval-mode BatchNorm and no dropout; call model.train() before training steps",
                          stacklevel=5)

    @contextlib.contextmanager
    def _own_random_stream(self):
        """Runs a separate forward on a random stream of its own (it starts where the user's stood at the first pass)
        and gives the user's stream back untouched: its dropout does not change the training forward's dropout masks
        or anything else the user draws. (The core samples targets from its own generator, seeded by the step.)"""
        devices = sorted({p.device for p in self.model.parameters() if p.is_cuda}, key=str)
        user = torch.get_rng_state(), {d: torch.cuda.get_rng_state(d) for d in devices}
        if self._pass_streams is not None:
            cpu, cuda = self._pass_streams
            torch.set_rng_state(cpu)
            for d in devices:
                if d in cuda:
                    torch.cuda.set_rng_state(cuda[d], d)
        try:
            yield
        finally:
            self._pass_streams = torch.get_rng_state(), {d: torch.cuda.get_rng_state(d) for d in devices}
            torch.set_rng_state(user[0])
            for d, state in user[1].items():
                torch.cuda.set_rng_state(state, d)

    @contextlib.contextmanager
    def _keep_running_statistics(self):
        """BatchNorm's running statistics (and num_batches_tracked) as they were before a separate forward."""
        kept = [(b, b.clone()) for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)
                for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None]
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, value in kept:
                    buffer.copy_(value)

    def _end_capture(self):
        """Before a step: every capture of this step is over."""
        self._remove_hooks()
        self._auto, self._auto_taken = None, False

    def _remove_hooks(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _loss(self, loss):
        name = _options.loss_name(loss) or self.loss
        if name is None:
            raise ValueError("kronfac: the statistics pass needs the model's likelihood: pass loss= (e.g. "
                             "'softmax-cross-entropy') to the constructor or to this call")
        return name

    def is_statistics_step(self):
        """Whether the next step() updates statistics."""
        return self.core.is_statistics_step()

    def update_statistics(self, *inputs, targets=None, forward=None, loss=None, **kwargs):
        """The separate statistics pass, on a statistics step (returns False and does nothing otherwise; the ordinary
        loop needs no call). ``forward`` (default: the model) runs on the first ceil(stats_fraction * B) examples of
        ``inputs`` (several positional inputs and keyword inputs are cut alike where their first dimension is the
        batch) with capture on; then the output gradients of targets sampled from the model (or of ``targets``,
        fisher="empirical") are back-propagated. Costs one forward and one backward on those examples; BatchNorm's
        running statistics and the user's random stream are left as they were."""
        self._explicit = True
        if not inputs or not torch.is_tensor(inputs[0]) or inputs[0].dim() == 0:
            raise TypeError("kronfac: update_statistics(*inputs, ...) takes the model's inputs, the first a tensor "
                            f"whose first dimension is the batch; got {[type(i).__name__ for i in inputs]}")
        if not self.core.is_statistics_step() or self._auto_taken:
            return False  # off schedule, or this step's forward was already captured automatically
        loss = self._loss(loss)
        self._warn_eval()
        model, (first, *rest), batch = forward or self.model, inputs, inputs[0].shape[0]

        def run(x):  # x: the first input's first rows; every other batch-shaped input is cut to as many
            def cut(a):
                return a[:x.shape[0]] if torch.is_tensor(a) and a.dim() > 0 and a.shape[0] == batch else a
            return self._select(model(x, *map(cut, rest), **{k: cut(v) for k, v in kwargs.items()}))

        self._arm_hooks()
        _separate_passes[0] += 1
        try:
            with self._keep_running_statistics(), self._own_random_stream():
                return self.core.update_statistics(run, first, loss, targets)
        finally:
            _separate_passes[0] -= 1
            self._remove_hooks()

    def capture_forward(self):
        """Shares the training forward (stats_fraction 1): on a statistics step, arms the capture and returns True;
        run the forward, the loss's backward with retain_graph=True, then statistics_from_forward(output)."""
        self._explicit = True
        if not self.core.capture_forward():
            return False
        self._arm_hooks()
        return True

    def statistics_from_forward(self, output, targets=None, loss=None):
        """The statistics from the training forward armed by capture_forward(): back-propagates targets sampled from
        ``output`` (the model's return value; see the option output) through the retained graph."""
        self._remove_hooks()
        self.core.statistics_from_forward(self._select(output), self._loss(loss), targets)

    def capture_backward(self, grad_scale):
        """Captures from the training forward and backward (empirical Fisher): call before the forward; grad_scale
        turns the loss gradient into per-example gradients (the batch size for a mean-reduced loss)."""
        self._explicit = True
        if not self.core.capture_backward(float(grad_scale)):
            return False
        self._arm_hooks()
        return True

    # -- the step ------------------------------------------------------------------------------------------------
    def step(self):
        """Folds in the captured statistics, refreshes on schedule and replaces each registered parameter's .grad by
        its preconditioned direction. Returns a kronfac.StepStats (``skipped``: non-finite gradients, do not step)."""
        self._end_capture()
        return self.core.step()

    @property
    def registration(self):
        """What was registered and what gets the fallback; str() is the one-line report."""
        return self.core.registration

    @property
    def layers(self):
        """The core's registered layers (name, kind, weight sharing), in registration order."""
        return [layer for _, layer in self._modules]

    @property
    def damping(self):
        """The damping lambda of the next step (settable)."""
        return self.core.damping

    @damping.setter
    def damping(self, value):
        self.core.damping = float(value)

    def state_dict(self):
        """The preconditioner's whole state (factors, decompositions, schedule): the core's bytes, with their CRC-32."""
        return {"kfac": _state.pack(self.core.save(), "Preconditioner")}

    def load_state_dict(self, state):
        """Loads a state_dict() of a preconditioner on the same model, its CRC-32 checked before anything changes."""
        self.core.load(_state.unpack(state.get("kfac"), "Preconditioner"))

    def __repr__(self):
        return f"kronfac.Preconditioner({self.registration.summary()})"


Preconditioner.__doc__ += _options.docs(["preconditioner"])
