"""The process setup the kfac tool makes first, for Python users: kronfac.configure_runtime(), and a one-time note
when a CPU model trains without it."""
import os
import warnings

import torch

from . import _kfac

_state = {"configured": False, "advised": False}


def configure_runtime(threads=0, flush_subnormals=True, keep_freed_memory=True):
    _state["configured"] = True
    return _kfac.configure_runtime(threads, flush_subnormals, keep_freed_memory)


configure_runtime.__doc__ = _kfac.configure_runtime.__doc__


def advise(model):
    """Once per process, for a model on the CPU while configure_runtime() has not run: what torch runs with, and the
    call that sets it up as the tool does. Torch's settings are the user's, so nothing is changed here."""
    if _state["configured"] or _state["advised"] or any(p.is_cuda for p in model.parameters()):
        return
    _state["advised"] = True
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    warnings.warn(f"kronfac: torch runs {torch.get_num_threads()} thread(s) on {cores} available core(s) and keeps "
                  "subnormal floats, which K-FAC's factors can produce and CPUs compute slowly; "
                  "print(kronfac.configure_runtime()) once before training sets up what the kfac tool does (every "
                  "core, subnormals flushed to zero, freed memory kept for the next step) and reports it "
                  "(threads=-1 keeps torch's thread count)", stacklevel=4)
