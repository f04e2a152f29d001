"""FAMO: Liu, Liu, Jin, Stone, Liu, "FAMO: Fast Adaptive Multitask Optimization",
NeurIPS 2023 (official code: github.com/Cranial-XIX/FAMO, ``famo.py``).

Task logits w (init 0), z = softmax(w). The network descends sum_t z_t log(L_t + eps) / c
with c = sum_t z_t / (L_t + eps) held constant, i.e. it gets sum_t a_t grad L_t with
a_t = (z_t / (L_t + eps)) / sum_s (z_s / (L_s + eps)); the a_t sum to 1. At initialisation
(z uniform) this is the equal-weight update of the *log* losses: a_t proportional to 1/L_t,
which is the mean of the task losses' gradients when the losses are equal.

The logits learn from the decrease of the log losses over one step:
delta_t = log(L_t(before) + eps) - log(L_t(after) + eps), grad_w = J_softmax(w)^T delta,
applied by Adam (lr 0.025, weight_decay gamma = 0.01, the official defaults).

``update`` chooses L(after):

* ``same_batch`` (default, the official loop): after ``optimizer.step()`` the trainer
  re-evaluates the task losses on the *same* micro-batches without gradients (one extra
  forward per step) and passes them to ``after_optimizer_step``; delta measures exactly the
  step's own progress.
* ``next_batch`` (cheaper, no extra forward): L(after) is the next step's loss on another
  batch, and the logits are updated in ``finalize`` one step later. delta then also holds
  the batch-to-batch noise of the losses.

Measured on the toy problem of ``tests/test_balancer_defects.py`` (two linear regressions on a
shared layer, losses of scale 1 and 100): see CONTRIBUTING.md ("FAMO variants").
L_t are the step's losses summed over micro-batches (each 1/k-scaled) and averaged over
ranks. The gradient clipping of the official code (max_norm) is the trainer's job. Losses
must be positive (log). Gradient accumulation is not exact: a_t is computed from each
micro-batch's own loss values.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from mtdense.balancing.base import WeightedLossBalancer, mean_across_ranks
from mtdense.registry import BALANCERS
from mtdense.errors import ConfigError

EPS = 1e-8
UPDATES = ("same_batch", "next_batch")


@BALANCERS.register("famo")
class FAMO(WeightedLossBalancer):
    exact_under_accumulation = False

    def __init__(self, tasks: list[str], lr: float = 0.025, gamma: float = 0.01, update: str = "same_batch"):
        super().__init__(tasks)
        if not lr > 0 or not gamma >= 0:
            raise ConfigError(f"famo needs lr > 0 and gamma >= 0, got lr={lr}, gamma={gamma}",
                              key="lr" if not lr > 0 else "gamma")
        if update not in UPDATES:
            raise ConfigError(f"{update!r} is not one of {', '.join(UPDATES)}", key="update")
        self.update = update
        self.needs_post_step_losses = update == "same_batch"
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

    def _learn(self, before: Tensor, after: Tensor) -> None:
        delta = torch.log(before + EPS) - torch.log(after + EPS)
        z = torch.softmax(self.logits.detach(), dim=0)
        self.step_own_parameter(self.logits, z * delta - z * (z @ delta))  # J_softmax^T delta

    def finalize(self, shared_params: list[nn.Parameter]) -> None:
        losses = self.take_step_losses()
        if losses is None:
            return
        losses = losses.to(self.logits.device)
        if self.update == "next_batch" and self.steps > 0:
            self._learn(self.previous_losses, losses)
        self.previous_losses.copy_(losses)
        self.steps += 1

    def after_optimizer_step(self, losses: Mapping[str, Tensor]) -> None:
        if self.update != "same_batch":
            return
        after = mean_across_ranks(self.stack_losses(losses).detach().to(self.logits.device).clone())
        self._learn(self.previous_losses, after)
