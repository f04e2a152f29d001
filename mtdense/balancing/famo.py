"""FAMO: Liu, Liu, Jin, Stone, Liu, "FAMO: Fast Adaptive Multitask Optimization",
NeurIPS 2023 (official code: github.com/Cranial-XIX/FAMO, ``famo.py``).

Task logits w (init 0), z = softmax(w). The network descends sum_t z_t log(L_t + eps) / c
with c = sum_t z_t / (L_t + eps) held constant, i.e. it gets sum_t a_t grad L_t with
a_t = (z_t / (L_t + eps)) / sum_s (z_s / (L_s + eps)); the a_t sum to 1. At initialisation
(z uniform) this is the equal-weight update of the *log* losses: a_t proportional to 1/L_t,
which is the mean of the task losses' gradients when the losses are equal.

The logits learn from the decrease of the log losses between consecutive steps:
delta_t = log(L_t(prev) + eps) - log(L_t(now) + eps), grad_w = J_softmax(w)^T delta,
applied by Adam (lr 0.025, weight_decay gamma = 0.01, the official defaults).

Deviation from the official loop: the official code re-evaluates the loss on the same
batch after ``optimizer.step()``; mtdense has no extra forward pass, so L(now) is the next
step's loss (other batch), and the logits are updated in ``finalize`` (one step later than
in the official code). L_t are the step's losses averaged over micro-batches and ranks.
The gradient clipping of the official code (max_norm) is the trainer's job.
Losses must be positive (log). Gradient accumulation is not exact: a_t is computed from each
micro-batch's own loss values.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mtdense.balancing.base import WeightedLossBalancer
from mtdense.registry import BALANCERS
from mtdense.errors import ConfigError

EPS = 1e-8


@BALANCERS.register("famo")
class FAMO(WeightedLossBalancer):
    exact_under_accumulation = False

    def __init__(self, tasks: list[str], lr: float = 0.025, gamma: float = 0.01):
        super().__init__(tasks)
        if not lr > 0 or not gamma >= 0:
            raise ConfigError(f"famo needs lr > 0 and gamma >= 0, got lr={lr}, gamma={gamma}",
                              key="lr" if not lr > 0 else "gamma")
        self.logits = nn.Parameter(torch.zeros(len(self.tasks)))
        self.optimizer = torch.optim.Adam([self.logits], lr=lr, weight_decay=gamma)
        self.register_buffer("previous_losses", torch.ones(len(self.tasks)))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def current_weights(self, losses: Tensor) -> Tensor:
        if bool((losses <= 0).any()):
            bad = {t: float(v) for t, v in zip(self.tasks, losses) if v <= 0}
            raise ValueError(f"famo: losses must be positive (FAMO uses log L), got {bad}; use another balancer")
        z = torch.softmax(self.logits.detach(), dim=0).to(losses.device)
        inverse = z / (losses + EPS)
        return inverse / inverse.sum()

    def finalize(self, shared_params: list[nn.Parameter]) -> None:
        losses = self.take_step_losses()
        if losses is None:
            return
        losses = losses.to(self.logits.device)
        if self.steps > 0:
            delta = torch.log(self.previous_losses + EPS) - torch.log(losses + EPS)
            z = torch.softmax(self.logits.detach(), dim=0)
            self.step_own_parameter(self.logits, z * delta - z * (z @ delta))  # J_softmax^T delta
        self.previous_losses.copy_(losses)
        self.steps += 1
