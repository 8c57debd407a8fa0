"""Which torch.nn modules are K-FAC layers, and how each becomes the core's layer.

A factory takes (name, module) and returns a ``kronfac._kfac.Layer`` made from the module's own tensors (the core's
layer kinds: Linear, Conv2d, Embedding, LayerNorm, BatchNorm2d), or raises ``Unsupported`` with the reason, which the
registration report then shows next to the module's parameters (they get the fallback). Factories are asked newest
first, so a registration can also take over a built-in type::

    kronfac.register_module_kind(MyProjection, lambda name, m: kronfac.layers.linear(name, m.weight, m.bias))

The tensors are shared, not copied: the core reads and rewrites the module's ``.grad`` directly.
"""
import torch

from . import _kfac


class Unsupported(Exception):
    """This module's configuration has no K-FAC block; its parameters get the fallback."""


_factories = []  # (type, factory), registration order


def register_module_kind(module_type, factory):
    """Registers (or replaces) the factory of ``module_type`` (and its subclasses)."""
    for i, (t, _) in enumerate(_factories):
        if t is module_type:
            _factories[i] = (module_type, factory)
            return
    _factories.append((module_type, factory))


def registered_module_kinds():
    """The torch.nn module types that get a K-FAC block, built-in and registered, in lookup order."""
    return [t for t, _ in _factories]


def make_layer(name, module):
    """(layer, None) if a registered kind covers ``module``; (None, reason) if its kind refuses this configuration;
    (None, None) if no kind covers its type."""
    for module_type, factory in reversed(_factories):
        if isinstance(module, module_type):
            if not any(p.requires_grad for p in module.parameters(recurse=False)):
                return None, None  # frozen (fine-tuning): nothing to precondition; the report lists it as frozen
            try:
                layer = factory(name, module)
            except Unsupported as why:
                return None, str(why)
            return layer, None
    return None, _hints.get(type(module))


def linear(name, weight, bias=None, weight_sharing=None):
    """A Linear block of ``weight`` [out, in] (and ``bias``), for a user's module kind; ``weight_sharing`` "expand" or
    "reduce" overrides the option of that name for this layer."""
    return _kfac.linear_layer(name, weight, bias, weight_sharing)


def _linear(name, m):
    return linear(name, m.weight, m.bias)


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def _conv2d(name, m):
    if m.groups != 1:
        raise Unsupported(f"groups {m.groups}: K-FAC supports groups 1 only")
    if m.padding_mode != "zeros":
        raise Unsupported(f"padding_mode '{m.padding_mode}': K-FAC supports 'zeros' only")
    padding = m.padding
    if padding == "valid":
        padding = 0
    elif padding == "same":  # symmetric where the kernel's reach is even; PyTorch pads one side more otherwise
        reach = [d * (k - 1) for d, k in zip(_pair(m.dilation), _pair(m.kernel_size))]
        if any(r % 2 for r in reach):
            raise Unsupported(f"padding 'same' with kernel {tuple(m.kernel_size)}: asymmetric; give the padding as "
                              "numbers")
        padding = [r // 2 for r in reach]
    return _kfac.conv2d_layer(name, m.weight, m.bias, _pair(m.stride), _pair(padding), _pair(m.dilation))


def _embedding(name, m):
    if m.max_norm is not None:
        raise Unsupported("max_norm rewrites the weight in the forward; K-FAC needs it unset")
    if m.sparse:
        raise Unsupported("sparse gradients: K-FAC needs sparse=False")
    return _kfac.embedding_layer(name, m.weight)


def _layer_norm(name, m):
    if m.weight is None or getattr(m, "bias", None) is None:
        raise Unsupported("LayerNorm without elementwise_affine (or without bias) has no scale-and-shift block")
    return _kfac.layer_norm_layer(name, m.weight, m.bias, list(m.normalized_shape), m.eps)


def tap_arguments(module):
    """What a layer's forward hook passes to tap() besides input and output: BatchNorm2d in evaluation mode
    normalizes with its running statistics."""
    if isinstance(module, torch.nn.BatchNorm2d) and not module.training and module.track_running_stats:
        return {"running_mean": module.running_mean, "running_var": module.running_var}
    return {}


def opaque(module):
    """Whether the module's children must not be registered (they are not called as modules)."""
    return type(module) in _hints


def _batch_norm2d(name, m):
    if m.weight is None:
        raise Unsupported("BatchNorm2d without affine has no scale-and-shift block")
    return _kfac.batch_norm2d_layer(name, m.weight, m.bias, m.eps)


# Modules whose parameters no factory can cover, with the reason the report gives.
# (The attention's projections run as functional calls; kronfac.nn.MultiheadAttention runs them as modules.)
_hints = {torch.nn.MultiheadAttention: "use kronfac.nn.replace_attention(model)"}

register_module_kind(torch.nn.Linear, _linear)
register_module_kind(torch.nn.Conv2d, _conv2d)
register_module_kind(torch.nn.Embedding, _embedding)
register_module_kind(torch.nn.LayerNorm, _layer_norm)
register_module_kind(torch.nn.BatchNorm2d, _batch_norm2d)
