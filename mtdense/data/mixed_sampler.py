"""A resumable, rank-sharded sampler whose every batch holds a fixed number of labelled samples.

Semi-supervised training (mean teacher, FixMatch, ClassMix, …) draws each batch as L labelled
and U = B − L unlabelled samples. This sampler yields per-rank indices in batch order — the
L labelled then the U unlabelled indices of batch 0, then batch 1, … — so a plain
``DataLoader(batch_size=B)`` forms exactly those batches.

Order. Each pool is a stream of permutations seeded by (seed, epoch, pool, round); an epoch
has as many batches as the *larger* pool fills (``len(pool) // (per_batch × W)``), the smaller
pool continues into its next permutation (cycles) instead of stopping the epoch. The order of
epoch e depends only on (seed, e), so a run restarted at batch k of epoch e sees the samples
the uninterrupted run would have seen (``set_epoch(e, k)``), like
``mtdense.engine.distributed.ResumableSampler``. Under DDP each global batch holds L·W
labelled and U·W unlabelled samples; rank r takes positions r, r+W, … of each part.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from mtdense.engine import distributed as dist_utils


class MixedRatioSampler(Sampler[int]):
    def __init__(self, labelled: Sequence[int], unlabelled: Sequence[int], batch_size: int,
                 labelled_per_batch: int, seed: int):
        if not labelled or not 0 < labelled_per_batch <= batch_size:
            raise ValueError(f"MixedRatioSampler: need labelled samples and 0 < labelled_per_batch "
                             f"({labelled_per_batch}) <= batch_size ({batch_size})")
        if labelled_per_batch < batch_size and not unlabelled:
            raise ValueError("MixedRatioSampler: batches ask for unlabelled samples but there are none")
        self.pools = (list(labelled), list(unlabelled))
        self.per_batch = (labelled_per_batch, batch_size - labelled_per_batch)
        self.batch_size, self.seed = batch_size, seed
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def num_batches(self) -> int:
        w = dist_utils.world_size()
        return max(len(pool) // (k * w) for pool, k in zip(self.pools, self.per_batch) if k)

    def _stream(self, which: int, length: int) -> list[int]:
        """The first ``length`` indices of pool ``which``'s permutation stream for this epoch."""
        pool, out, rnd = self.pools[which], [], 0
        while len(out) < length:
            g = torch.Generator().manual_seed(((self.seed * 100_003 + self.epoch) * 2 + which) * 1_000_003 + rnd)
            out += [pool[i] for i in torch.randperm(len(pool), generator=g).tolist()]
            rnd += 1
        return out[:length]

    def __iter__(self) -> Iterator[int]:
        w, r, n = dist_utils.world_size(), dist_utils.rank(), self.num_batches()
        streams = [self._stream(i, n * k * w) for i, k in enumerate(self.per_batch)]
        for b in range(self.start_batch, n):
            for stream, k in zip(streams, self.per_batch):
                yield from stream[b * k * w:(b + 1) * k * w][r::w]

    def __len__(self) -> int:
        return (self.num_batches() - self.start_batch) * self.batch_size
