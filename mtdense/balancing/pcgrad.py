"""PCGrad (projecting conflicting gradients): Yu, Kumar, Gupta, Levine, Hausman, Finn,
"Gradient Surgery for Multi-Task Learning", NeurIPS 2020, Algorithm 1.

For each task i, in a uniformly random order of the other tasks j: if g_i . g_j < 0,
project g_i onto the normal plane of g_j, g_i <- g_i - (g_i . g_j / |g_j|^2) g_j (g_j is the
original, unprojected gradient). The shared gradient is the sum of the projected g_i. The
projections are done on coefficient vectors with the Gram matrix, so the result is reported
as the effective per-task coefficients alpha (combined = sum_t alpha_t g_t).

``shuffle=False`` uses the task order instead of a random one; the random order comes from
the balancer's own generator (``seed``; identical on every DDP rank, checkpointed).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtdense.balancing.gradients import GradientBalancer
from mtdense.registry import BALANCERS


@BALANCERS.register("pcgrad")
class PCGrad(GradientBalancer):
    def __init__(self, tasks: list[str], shuffle: bool = True, seed: int = 0):
        super().__init__(tasks)
        self.shuffle = bool(shuffle)
        self.generator = torch.Generator().manual_seed(int(seed))

    def coefficients(self, gram: Tensor) -> Tensor:
        n = gram.shape[0]
        projected = torch.eye(n, dtype=gram.dtype, device=gram.device)  # row i: g_i^PC in the g basis
        for i in range(n):
            order = torch.randperm(n, generator=self.generator).tolist() if self.shuffle else range(n)
            for j in order:
                if j == i:
                    continue
                dot = projected[i] @ gram[:, j]
                if dot < 0:
                    projected[i, j] -= dot / gram[j, j]
        return projected.sum(dim=0)
