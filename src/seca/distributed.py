"""One experiment over several processes: how seca uses ``torch.distributed`` (docs/distributed.md).

``torchrun --nproc_per_node N -m seca run CONFIG`` starts N processes (ranks). Each joins the process
group (:func:`join`: NCCL on GPUs, gloo on CPUs), owns a fixed shard of every task's training images and
of every test set, and trains with its share of the global batch; DistributedDataParallel averages the
gradients of the learner's trainable parameters. What a learner computes over a whole task (class means,
covariances, SG-AKT's utility) is written as sums and counts passed through :func:`all_sum`, which is the
identity in a single process, so that one process and N processes compute the same statistic.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from .errors import SecaError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one run: ``rank`` of ``size``, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes the run's files and prints."""
        return self.rank == 0


_world = World()  # the single process, until join()


def world() -> World:
    return _world


def launched() -> bool:
    """Whether this process was started by torchrun (or srun/mpirun with its variables) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: str = "auto", timeout_s: float = 1800.0) -> torch.device:
    """Join the process group that torchrun set up (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_*``);
    returns this process's device. NCCL and ``cuda:LOCAL_RANK`` where CUDA is available and ``device`` is
    ``auto`` or ``cuda``; gloo and the CPU otherwise. A collective that waits longer than ``timeout_s`` (a
    rank that died or hangs) fails the run instead of hanging it. Joining twice is a no-op."""
    global _world
    env = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    missing = [k for k, v in env.items() if v is None]
    if missing:
        raise SecaError(
            f"a distributed run needs the variables torchrun sets ({', '.join(missing)} missing); "
            "start it with torchrun --nproc_per_node N -m seca run ..."
        )
    rank, size = int(env["RANK"]), int(env["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SecaError(f"train.device '{device}' is not available: this machine has no CUDA GPU; use auto or cpu")
    if device not in ("auto", "cpu", "cuda"):
        raise SecaError(
            f"train.device '{device}' cannot be shared by {size} processes: use auto, cuda (each "
            "process takes cuda:LOCAL_RANK) or cpu"
        )
    gpu = device != "cpu" and torch.cuda.is_available()
    if gpu:
        if local_rank >= torch.cuda.device_count():
            raise SecaError(
                f"local rank {local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                "start at most that many processes per node (--nproc_per_node)"
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if gpu else "gloo", rank=rank, world_size=size, timeout=datetime.timedelta(seconds=timeout_s)
        )
    _world = World(rank, size, local_rank)
    return torch.device("cuda", local_rank) if gpu else torch.device("cpu")


def leave(synchronize: bool = True) -> None:
    """Leave the process group at the end of the command: once every process has come here (a barrier), so that none
    tears its connections down while another still uses them (gloo then aborts the process whose peer left first,
    "terminate called without an active exception", after a run that had finished). ``synchronize=False`` after a
    failed command: the other processes may be gone, and a barrier would wait for them until the timeout."""
    global _world
    if dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()
    _world = World()


def active() -> bool:
    return _world.size > 1


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over all processes (a new tensor); ``tensor`` itself in one process."""
    if not active():
        return tensor
    here = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else tensor.device
    total = tensor.detach().to(here, copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(tensor.device)


def process_sizes(count: int) -> list[int]:
    """Every process's ``count`` (how many items it holds), in rank order; ``[count]`` in one process."""
    w = world()
    return all_sum(torch.zeros(w.size, dtype=torch.long).index_fill_(0, torch.tensor(w.rank), count)).tolist()


def gather_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every process's rows of ``tensors`` (the same number in each), in rank order: the same tensors on every
    process, as sums of zero-padded copies (floating rows pass through float64); the tensors themselves in one
    process."""
    if not active():
        return tensors
    sizes = process_sizes(len(tensors[0]))
    start = sum(sizes[: world().rank])
    gathered = []
    for t in tensors:
        wide = t.double() if t.is_floating_point() else t
        where = torch.arange(start, start + len(t), device=t.device)
        padded = wide.new_zeros(sum(sizes), *t.shape[1:]).index_copy_(0, where, wide)
        gathered.append(all_sum(padded).to(t.dtype))
    return tuple(gathered)


class Failed(SecaError):
    """Raised on the other processes when rank 0 failed with a SecaError; rank 0 has printed the message."""


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result (or its SecaError) to every process."""
    if not active():
        return fn()
    payload: list[Any] = [None]
    if _world.main:
        try:
            payload = [("ok", fn())]
        except SecaError as e:
            payload = [("error", str(e))]
            dist.broadcast_object_list(payload, src=0)
            raise
    dist.broadcast_object_list(payload, src=0)
    status, value = payload[0]
    if status == "error":
        raise Failed(value)
    return value


# --------------------------------------------------------------------------------------------------
# Shards and batches


def shard_positions(n: int, seed: int, rank: int, size: int) -> np.ndarray:
    """The positions (of a task's ``n`` images) that process ``rank`` of ``size`` owns, in increasing order.

    The images are dealt round-robin from a permutation drawn from ``seed``: the shards are disjoint, cover
    every image, differ in size by at most one, and each holds about ``1/size`` of every class (a shard may
    lack a small class; the statistics are reduced over all shards).
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10_007 + 7_919)).numpy()
    return np.sort(order[rank::size])


class ShardBatches(Sampler[list[int]]):
    """One epoch of one process's training batches, as lists of positions in its shard.

    The global batch ``batch_size`` is split equally (``batch_size / size`` images per process). Every
    process takes the same number of steps: ``ceil(smallest shard / local batch)``, the last one holding
    what is left of its shard (one image more than the others at most). ``shares[k]`` is this process's
    fraction of the images of step ``k`` across all processes: the engine weights its loss by it, so that
    the gradient is the mean over the whole global batch even when the last step is uneven.
    """

    def __init__(self, sizes: Sequence[int], rank: int, batch_size: int, seed: int, epoch: int):
        local = batch_size // len(sizes)
        self.steps = max(1, math.ceil(min(sizes) / local))
        self.size, self.local = sizes[rank], local
        self.generator_seed = (seed * 10_007 + epoch) * 1_009 + rank
        every = [self._batch_sizes(n) for n in sizes]
        totals = [sum(step) for step in zip(*every)]
        self.shares = [mine / total for mine, total in zip(every[rank], totals)]

    def _batch_sizes(self, n: int) -> list[int]:
        return [self.local] * (self.steps - 1) + [n - self.local * (self.steps - 1)]

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.generator_seed)).tolist()
        start = 0
        for n in self._batch_sizes(self.size):
            yield order[start : start + n]
            start += n


class TrainingStep(nn.Module):
    """The learner's ``training_step`` as a module's ``forward``: what DistributedDataParallel wraps."""

    def __init__(self, learner: nn.Module):
        super().__init__()
        self.learner = learner

    def forward(self, batch):
        return self.learner.training_step(batch)


def data_parallel(learner: nn.Module, device: torch.device) -> nn.Module:
    """The learner's training step wrapped in DistributedDataParallel, for one task (the trainable parameters
    change from task to task).

    DDP reduces only parameters that require a gradient: the frozen CLIP is not even a submodule of a
    learner. The graph is static within a task, so ``static_graph`` finds once which trainable parts a step
    leaves unused (the relevance network in the first task), and they keep no gradient, as in one process.
    Buffers are not synchronised in the steps: every process computes the same ones.
    """
    return nn.parallel.DistributedDataParallel(
        TrainingStep(learner),
        device_ids=[device.index] if device.type == "cuda" else None,
        forward_sync_buffers=False,
        static_graph=True,
    )
