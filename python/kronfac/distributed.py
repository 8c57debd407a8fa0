"""torch.distributed as kronfac's communicator: a DDP or torchrun job averages K-FAC's factors over its own process
group, without kronfac's launcher.

The preconditioner's ``communicator`` argument takes ``None`` (torch.distributed's default group when it is
initialized with more than one process, else one process), a ``torch.distributed`` process group, or a
``kronfac.Communicator`` (kronfac.connect_from_environment()).
"""
import torch
import torch.distributed as dist

from . import _kfac


def _global_rank(group, rank):
    if group is None:
        return rank
    get = getattr(dist, "get_global_rank", None) or dist.distributed_c10d._get_global_rank  # torch < 2.0
    return get(group, rank)


class TorchDistributed(_kfac.Communicator):
    """The collectives of a torch.distributed process group (default: the default group), for the C++ core. Tensors
    go to the backend's device: the CPU for Gloo, the current CUDA device for NCCL."""

    def __init__(self, group=None):
        super().__init__()
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("kronfac.TorchDistributed: torch.distributed is not initialized; call "
                               "torch.distributed.init_process_group(...) first (torchrun sets its environment)")
        self.group = group
        self._rank_in_group = dist.get_rank(group)
        self._world = dist.get_world_size(group)
        self._name = str(dist.get_backend(group))

    def _rank(self):
        return self._rank_in_group

    def _size(self):
        return self._world

    def _backend(self):
        return f"torch.distributed ({self._name})"

    def _device(self):
        return f"cuda:{torch.cuda.current_device()}" if self._name == "nccl" else "cpu"

    def _all_reduce_sum(self, tensors):
        for t in tensors:
            dist.all_reduce(t, group=self.group)

    def _broadcast(self, tensors, root):
        for t in tensors:
            dist.broadcast(t, src=_global_rank(self.group, root), group=self.group)

    def _barrier(self):
        dist.barrier(group=self.group)


def resolve(communicator):
    """The core's communicator for the ``communicator`` argument (see the module's doc), or None for one process."""
    if isinstance(communicator, _kfac.Communicator):
        return communicator
    if communicator is None:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return TorchDistributed()
        return None
    if dist.is_available() and isinstance(communicator, dist.ProcessGroup):
        return TorchDistributed(communicator)
    raise TypeError(f"kronfac: communicator= takes a torch.distributed process group, kronfac.TorchDistributed(...) "
                    f"or kronfac.connect_from_environment(); got {type(communicator).__name__}")
