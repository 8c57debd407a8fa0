"""Which torch.nn modules are K-FAC layers, and how each becomes the core's layer.

The layer kinds are the C++ core's (``_kfac.layer_kinds()``: Linear, Conv2d, Conv1d, Embedding, LayerNorm,
BatchNorm2d, GroupNorm, RMSNorm): each names the torch.nn classes it covers and the attributes it reads, and decides
from those attributes whether it has a block for the module or why not, once for both front ends. This file only
hooks the classes and hands the attributes over. A refused module's reason is shown by the registration report next
to its parameters (they get the fallback).

Factories are asked newest first, so a registration can also take over a built-in type, or add one::

    kronfac.register_module_kind(MyProjection, lambda name, m: kronfac.layers.linear(name, m.weight, m.bias))

The tensors are shared, not copied: the core reads and rewrites the module's ``.grad`` directly.
"""
import importlib

import torch

from . import _kfac


class Unsupported(Exception):
    """This module's configuration has no K-FAC block; its parameters get the fallback."""


_factories = []  # (type, factory), registration order


def register_module_kind(module_type, factory):
    """Registers (or replaces) the factory of ``module_type`` (and its subclasses): ``factory(name, module)`` returns
    a layer (``kronfac.layers.linear``, ``kronfac.layers.of_kind``) or raises ``kronfac.layers.Unsupported``."""
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
            own = list(module.parameters(recurse=False))
            if own and not any(p.requires_grad for p in own):
                return None, None  # frozen (fine-tuning): nothing to precondition; the report lists it as frozen
            try:
                layer = factory(name, module)
            except Unsupported as why:
                return None, str(why)
            return layer, None
    return None, _hints.get(type(module))


def of_kind(kind, name, module, weight_sharing=None):
    """The core's layer of kind ``kind`` (a name of ``_kfac.layer_kinds()``) for ``module``, made from the attributes
    that kind reads; raises ``Unsupported`` with the kind's reason if it has no block for this configuration."""
    attributes = {a: _attribute(getattr(module, a, None)) for a in _kinds[kind]["attributes"]}
    return _make(kind, name, attributes, weight_sharing)


def kind_factory(kind):
    """A factory (for ``register_module_kind``) that makes ``module`` a layer of the core's kind ``kind``."""
    return lambda name, module: of_kind(kind, name, module)


def linear(name, weight, bias=None, weight_sharing=None):
    """A Linear block of ``weight`` [out, in] (and ``bias``), for a user's module kind; ``weight_sharing`` "expand" or
    "reduce" overrides the option of that name for this layer."""
    return _make("Linear", name, {"weight": weight, "bias": bias}, weight_sharing)


def opaque(module):
    """Whether the module's children must not be registered (they are not called as modules)."""
    return type(module) in _hints


def _make(kind, name, attributes, weight_sharing):
    layer, refusal = _kfac.make_layer(kind, name, attributes, weight_sharing)
    if layer is None:
        raise Unsupported(refusal)
    return layer


def _attribute(value):
    """A module attribute as the core reads it (torch.Size and tuples as lists)."""
    return list(value) if isinstance(value, (tuple, torch.Size)) else value


def _resolve(path):
    """The class at a dotted path ("torch.nn.RMSNorm"), or None where this torch has none."""
    module_path, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_path), name, None)
    except ImportError:
        return None


# Modules whose parameters no factory can cover, with the reason the report gives.
# (The attention's projections run as functional calls; kronfac.nn.MultiheadAttention runs them as modules.)
_hints = {torch.nn.MultiheadAttention: "use kronfac.nn.replace_attention(model)"}

# The core's kinds, each on the torch.nn classes it names that this torch has.
_kinds = {k["name"]: k for k in _kfac.layer_kinds()}
for _kind in _kinds.values():
    for _path in _kind["python_modules"]:
        _type = _resolve(_path)
        if _type is not None:
            register_module_kind(_type, kind_factory(_kind["name"]))
