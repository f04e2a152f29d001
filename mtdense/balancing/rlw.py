"""Random loss weighting (RLW): Lin, Ye, Xu, Shi, Zhang, Kwok, "Reasonable Effectiveness of
Random Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022 (arXiv:2111.10603).

Each optimizer step draws z ~ N(0, I_T) and weights the losses by softmax(z) (weights sum
to 1), the paper's main variant and the one in LibMTL and the FAMO/Nash-MTL code. The draw
comes from the balancer's own generator (``seed``), so every DDP rank draws the same
weights, all micro-batches of a step share them, and the generator state is checkpointed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtdense.balancing.base import WeightedLossBalancer
from mtdense.registry import BALANCERS


@BALANCERS.register("rlw")
class RandomLossWeighting(WeightedLossBalancer):
    def __init__(self, tasks: list[str], seed: int = 0):
        super().__init__(tasks)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._step_weights: Tensor | None = None

    def current_weights(self, losses: Tensor) -> Tensor:
        if self.micro_batches == 0:  # first micro-batch of a step: draw this step's weights
            z = torch.randn(len(self.tasks), generator=self.generator)
            self._step_weights = torch.softmax(z, dim=0).to(losses.device)
        return self._step_weights
