"""torch.distributed set-up for torchrun launches (gloo on CPU, nccl on CUDA) and a
resumable, rank-sharded sampler.

No home-made distribution: launched with ``torchrun --nproc-per-node N``, the environment
variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) are read by
``torch.distributed.init_process_group``; a plain ``python``/``mtdense`` launch is one process.
"""

from __future__ import annotations

import datetime
import os
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def init_distributed(device_type: str, timeout_minutes: float = 10.0) -> bool:
    """Initialise the default process group when launched by torchrun; return whether DDP is on.

    ``timeout_minutes`` bounds how long a collective waits for a stalled rank (torch's default
    is 30 minutes); the trainer turns the timeout into an error naming the rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=float(timeout_minutes)))
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` in place over the DDP ranks (one all_reduce); no-op on one process."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def mean_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` in place over the DDP ranks (one all_reduce); no-op on one process."""
    if is_distributed():
        sum_across_ranks(tensor).div_(world_size())
    return tensor


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank if ``flag`` is true on any rank (one small all-reduce under DDP)."""
    if not is_distributed():
        return flag
    return bool(sum_across_ranks(torch.tensor([1.0 if flag else 0.0], device=device)).item() > 0)


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """A dict of floats averaged over the ranks."""
    if not is_distributed() or not values:
        return values
    t = mean_across_ranks(torch.tensor(list(values.values()), dtype=torch.float64))
    return dict(zip(values, t.tolist()))


class ResumableSampler(Sampler[int]):
    """Epoch-seeded permutation, sharded across ranks, that can start mid-epoch.

    The order of epoch e depends only on (seed, e), so an interrupted run that restarts at
    batch k of epoch e sees exactly the samples the uninterrupted run would have seen.
    Rank r takes positions r, r+W, r+2W … of each global batch of ``batch_size × W`` samples,
    so W ranks with per-rank batch b see the same global batches as one process with batch b·W.
    """

    def __init__(self, length: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool):
        self.length, self.batch_size, self.shuffle, self.seed, self.drop_last = length, batch_size, shuffle, seed, drop_last
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.length))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.length, generator=g).tolist()

    def num_batches(self) -> int:
        step = self.batch_size * world_size()
        return self.length // step if self.drop_last else -(-self.length // step)

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        step = self.batch_size * world_size()
        r = rank()
        for b in range(self.start_batch, self.num_batches()):
            chunk = order[b * step:(b + 1) * step]
            yield from chunk[r::world_size()]

    def __len__(self) -> int:
        step = self.batch_size * world_size()
        return sum(len(range(rank(), min(step, self.length - b * step), world_size()))
                   for b in range(self.start_batch, self.num_batches()))
