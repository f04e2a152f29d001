"""Dynamic Weight Average (DWA): Liu, Johns, Davison, "End-to-End Multi-Task Learning with
Attention" (MTAN), CVPR 2019, Eq. 7.

For epoch k: w_t(k) = T * exp(r_t(k-1)/temp) / sum_i exp(r_i(k-1)/temp), with
r_t(k-1) = L_t(k-1) / L_t(k-2) the ratio of the task's mean training losses of the two
previous epochs; w_t = 1 during the first two epochs; temp = 2 as in the paper. DWA sums
each optimizer step's losses itself (buffers saved with the checkpoint, so a mid-epoch resume
is exact); at ``on_epoch_end`` the epoch means are averaged over DDP ranks (one all-reduce),
so every rank uses the same weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtdense.balancing.base import WeightedLossBalancer, mean_across_ranks
from mtdense.registry import BALANCERS
from mtdense.errors import ConfigError


@BALANCERS.register("dwa")
class DynamicWeightAverage(WeightedLossBalancer):
    def __init__(self, tasks: list[str], temp: float = 2.0):
        super().__init__(tasks)
        if not temp > 0:
            raise ConfigError(f"balancer.temp: {temp} must be > 0")
        self.temp = float(temp)
        n = len(self.tasks)
        self.register_buffer("history", torch.ones(2, n, dtype=torch.float64))  # rows: L(k-2), L(k-1)
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("weights", torch.ones(n))
        self.register_buffer("epoch_sum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("epoch_steps", torch.zeros((), dtype=torch.long))

    def current_weights(self, losses: Tensor) -> Tensor:
        return self.weights

    def finalize(self, shared_params) -> None:
        if self.micro_batches:
            self.epoch_sum += self.step_losses.double().to(self.epoch_sum.device)
            self.epoch_steps += 1
        super().finalize(shared_params)

    def on_epoch_end(self) -> None:
        if int(self.epoch_steps) == 0:
            return
        latest = mean_across_ranks(self.epoch_sum / self.epoch_steps)
        self.epoch_sum.zero_()
        self.epoch_steps.zero_()
        self.history.copy_(torch.stack([self.history[1], latest]))
        self.epochs_seen += 1
        if self.epochs_seen >= 2:
            ratios = self.history[1] / self.history[0]
            weights = len(self.tasks) * torch.softmax(ratios / self.temp, dim=0)
            self.weights.copy_(weights.to(self.weights.dtype))
