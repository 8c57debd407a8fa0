"""K-FAC-family natural-gradient optimizers for PyTorch models, over the C++ core of the kfac library.

    import kronfac
    opt = kronfac.KFACOptimizer(model, lr=0.05, damping=1e-2, loss="cross_entropy")  # instead of torch.optim.SGD
    for x, y in batches:                # the ordinary loop, unchanged
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

``kronfac.Preconditioner`` is the preconditioner alone (it rewrites ``.grad`` before any torch.optim optimizer);
``kronfac.KFACOptimizer`` is a ``torch.optim.Optimizer`` with the K-FAC step rule (KL clip, momentum, weight decay);
``kronfac.QModelOptimizer`` is the K-FAC paper's quadratic-model rule; ``kronfac.nn.replace_attention(model)`` swaps
torch.nn.MultiheadAttention (whose projections no hook can see) for an equal module K-FAC can precondition.
``kronfac.Muon``, ``kronfac.Shampoo`` and ``kronfac.SOAP`` are the optimizers one would pick instead, over the same
core, in place of ``torch.optim.AdamW`` in any loop. Every option of the C++ library is a keyword with the same name,
default and range: ``kronfac.option_specs()`` lists them. Under torchrun/DDP the factors are averaged over
torch.distributed's default group (``kronfac.TorchDistributed``).
"""
from ._kfac import (Communicator, Registration, StepStats, __version__, connect_from_environment,  # noqa: F401
                    loss, loss_terms)
from . import nn  # noqa: F401
from .distributed import TorchDistributed  # noqa: F401
from .runtime import configure_runtime  # noqa: F401
from ._options import option_specs  # noqa: F401
from .layers import register_module_kind, registered_module_kinds  # noqa: F401
from .preconditioner import Preconditioner  # noqa: F401
from .optimizer import KFACOptimizer, QModelOptimizer  # noqa: F401
from .matrix_optimizers import SOAP, Muon, Shampoo, muon_split  # noqa: F401

__all__ = ["Preconditioner", "KFACOptimizer", "QModelOptimizer", "StepStats", "Registration", "Communicator",
           "TorchDistributed", "connect_from_environment", "configure_runtime", "option_specs", "register_module_kind",
           "registered_module_kinds", "loss", "loss_terms", "nn", "Muon", "Shampoo", "SOAP", "muon_split"]
