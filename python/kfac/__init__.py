"""K-FAC-family natural-gradient preconditioners for PyTorch models, over kfac's C++ core.

    import kfac
    opt = kfac.KFACOptimizer(model, lr=0.05, damping=1e-2, loss="softmax-cross-entropy")
    for x, y in batches:
        opt.zero_grad()
        opt.update_statistics(x)        # statistics steps only: a forward with capture, sampled targets
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

``kfac.Preconditioner`` is the preconditioner alone (it rewrites ``.grad`` before any torch.optim optimizer);
``kfac.KFACOptimizer`` is a ``torch.optim.Optimizer`` with the K-FAC step rule (KL clip, momentum, weight decay);
``kfac.QModelOptimizer`` is the K-FAC paper's quadratic-model rule; ``kfac.nn.replace_attention(model)`` swaps
torch.nn.MultiheadAttention (whose projections no hook can see) for an equal module K-FAC can precondition.
``kfac.Muon``, ``kfac.Shampoo`` and ``kfac.SOAP`` are the optimizers one would pick instead, over the same core, in
place of ``torch.optim.AdamW`` in any loop. Every option of the C++ library is a keyword
with the same name, default and range: ``kfac.option_specs()`` lists them.
"""
from ._kfac import (Communicator, Registration, StepStats, __version__, configure_runtime,  # noqa: F401
                    connect_from_environment, loss)
from . import nn  # noqa: F401
from ._options import option_specs  # noqa: F401
from .layers import register_module_kind, registered_module_kinds  # noqa: F401
from .preconditioner import Preconditioner  # noqa: F401
from .optimizer import KFACOptimizer, QModelOptimizer  # noqa: F401
from .matrix_optimizers import SOAP, Muon, Shampoo, muon_split  # noqa: F401

__all__ = ["Preconditioner", "KFACOptimizer", "QModelOptimizer", "StepStats", "Registration", "Communicator",
           "connect_from_environment", "configure_runtime", "option_specs", "register_module_kind",
           "registered_module_kinds", "loss", "nn", "Muon", "Shampoo", "SOAP", "muon_split"]
