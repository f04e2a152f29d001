"""Homoscedastic uncertainty weighting: Kendall, Gal, Cipolla, "Multi-Task Learning Using
Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018.

The form used here, for every task type alike:

    L = sum_t exp(-s_t) L_t + s_t,        s_t = log sigma_t^2 learnable, init 0 (weight 1)

Kendall et al. derive 1/(2 sigma^2) L + log sigma for a Gaussian (regression) likelihood and
1/sigma^2 L + log sigma for a softmax (classification) one. Written in s = log sigma^2 the
regression term is (1/2)(exp(-s) L + s), i.e. half of the form above; the classification term
is exp(-s) L + s/2. All of them have their optimum at exp(s_t) = L_t, so the learnt weights
agree at convergence; the paths differ by those constant factors. LibMTL
(``LibMTL/weighting/UW.py``) uses (1/2)(exp(-s_t) L_t + s_t) for every task — exactly half
of the form here, so the network's gradients are half as large — with s_t initialised at
-0.5 (initial weight exp(0.5)/2 = 0.82). For a mean-squared-error task with Gaussian noise of
variance sigma^2, exp(-s_t) converges to 1 / sigma^2 in either form.

Update: the network receives sum_t exp(-s_t) L_t with s fixed during the step. In
``finalize`` the exact gradient dL/ds_t = 1 - exp(-s_t) L_t (L_t = the step's loss,
averaged over micro-batches and DDP ranks) is applied by the balancer's own Adam
(lr 0.025 as ``--method-params-lr`` in the FAMO/Nash-MTL code), so accumulation and DDP
give the same s as one large batch. The trainer must not add ``log_vars`` to its optimizer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mtdense.balancing.base import WeightedLossBalancer
from mtdense.registry import BALANCERS
from mtdense.errors import ConfigError


@BALANCERS.register("uncertainty")
class UncertaintyWeighting(WeightedLossBalancer):
    def __init__(self, tasks: list[str], lr: float = 0.025, init_log_var: float = 0.0):
        super().__init__(tasks)
        if not lr > 0:
            raise ConfigError(f"{lr} must be > 0", key="lr")
        self.log_vars = nn.Parameter(torch.full((len(self.tasks),), float(init_log_var)))
        self.optimizer = torch.optim.Adam([self.log_vars], lr=lr)

    def current_weights(self, losses: Tensor) -> Tensor:
        return torch.exp(-self.log_vars.detach())

    def finalize(self, shared_params: list[nn.Parameter]) -> None:
        losses = self.take_step_losses()
        if losses is None:
            return
        with torch.no_grad():
            grad = 1.0 - torch.exp(-self.log_vars) * losses.to(self.log_vars.device)
        self.step_own_parameter(self.log_vars, grad)
