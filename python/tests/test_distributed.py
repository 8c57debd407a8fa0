"""Data parallelism from Python: two processes, each on its half of every batch, end where one process on the whole
batches does, with kronfac's own c10d communicator from the environment (kronfac.connect_from_environment) and with
torch.distributed's default group under DistributedDataParallel, the ordinary loop unchanged. The exact Fisher
(sampled targets are drawn per rank, so a sampled run differs from one process by its draws)."""
import os
import socket
import subprocess
import sys

import torch

WORKER = r"""
import sys, torch, torch.nn.functional as F, kronfac
torch.set_default_dtype(torch.float64)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.LayerNorm(6), torch.nn.Linear(6, 3))
comm = kronfac.connect_from_environment()
opt = kronfac.KFACOptimizer(model, lr=0.1, damping=1e-2, refresh_period=2, method="ekfac", fisher="exact",
                         loss="softmax-cross-entropy",
                         communicator=comm)
g = torch.Generator().manual_seed(1)
for _ in range(5):
    x, y = torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)
    half = slice(comm.rank * 8 // comm.size, (comm.rank + 1) * 8 // comm.size)
    opt.zero_grad()
    opt.update_statistics(x[half])
    F.cross_entropy(model(x[half]), y[half]).backward()
    opt.step()
torch.save([p.detach() for p in model.parameters()], sys.argv[1])
"""


# A torchrun-style job: torch.distributed initialized from the environment, the model wrapped in DDP, the ordinary
# loop; kronfac finds the default group by itself.
TORCH_DISTRIBUTED_WORKER = r"""
import sys, torch, torch.distributed as dist, torch.nn.functional as F, kronfac
torch.set_default_dtype(torch.float64)
import os
# A file store, not a TCP port: no port to collide with the tests' other runs.
dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=int(os.environ["RANK"]),
                        world_size=int(os.environ["WORLD_SIZE"]))
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.LayerNorm(6), torch.nn.Linear(6, 3))
model = torch.nn.parallel.DistributedDataParallel(net) if dist.get_world_size() > 1 else net
opt = kronfac.KFACOptimizer(model, lr=0.1, damping=1e-2, refresh_period=2, method="ekfac", fisher="exact",
                            loss="cross_entropy")
assert opt.preconditioner.core.communicator.size == dist.get_world_size()
g = torch.Generator().manual_seed(1)
for _ in range(5):
    x, y = torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)
    half = slice(dist.get_rank() * 8 // dist.get_world_size(), (dist.get_rank() + 1) * 8 // dist.get_world_size())
    opt.zero_grad()
    F.cross_entropy(model(x[half]), y[half]).backward()
    opt.step()
    assert opt.last_stats.statistics_updated
torch.save([p.detach() for p in net.parameters()], sys.argv[1])
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path, ranks, worker=WORKER):
    port = free_port()
    procs = []
    for rank in range(ranks):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(ranks), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, "-c", worker, str(tmp_path / f"{ranks}_{rank}.pt"),
                                       str(tmp_path / f"store_{ranks}")], env=env, stderr=subprocess.PIPE,
                                      text=True))
    for rank, p in enumerate(procs):  # a failure shows each rank's own error (it failed once in eight full runs)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"rank {rank} of {ranks} exited {p.returncode}:\n{err}"
    return [torch.load(tmp_path / f"{ranks}_{rank}.pt") for rank in range(ranks)]


def test_two_ranks_equal_one_process(tmp_path):
    (one,) = run(tmp_path, 1)
    first, second = run(tmp_path, 2)
    for a, b, c in zip(one, first, second):
        assert torch.equal(b, c)  # every rank takes the same step
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_torch_distributed_with_ddp_equals_one_process(tmp_path):
    (one,) = run(tmp_path, 1, TORCH_DISTRIBUTED_WORKER)
    first, second = run(tmp_path, 2, TORCH_DISTRIBUTED_WORKER)
    for a, b, c in zip(one, first, second):
        assert torch.equal(b, c)
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
