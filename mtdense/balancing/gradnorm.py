"""GradNorm: Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018.

Learnable weights w_t (init 1, renormalised to sum to T after every update); the network
receives sum_t w_t L_t. On W, the weight of the last shared layer:
G_t = ||grad_W w_t L_t||, Gbar = mean_t G_t, r_t = Ltilde_t / mean(Ltilde) with
Ltilde_t = L_t / L_t(0); L_grad = sum_t |G_t - Gbar r_t^alpha| with the target treated as a
constant (paper, Sec. 3.2), so dL_grad/dw_t = sign(G_t - target_t) ||grad_W L_t||.
alpha = 1.5 (the paper's NYUv2 value). The weights are updated in ``finalize`` by the
balancer's own Adam (``lr``), from the step's per-task gradients of W and losses summed
over micro-batches and averaged over DDP ranks (one all_reduce), so accumulation is exact.
L_t(0) are the losses of the first step.

W: by default the last shared parameter with at least 2 dimensions (the weight of the last
shared conv/linear layer, skipping biases and norm scales); ``param_index`` picks another
entry of ``shared_params`` (Python indexing, -1 = last).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from mtdense.balancing.base import WeightedLossBalancer, mean_across_ranks
from mtdense.registry import BALANCERS
from mtdense.errors import ConfigError


@BALANCERS.register("gradnorm")
class GradNorm(WeightedLossBalancer):
    def __init__(self, tasks: list[str], alpha: float = 1.5, lr: float = 0.025, param_index: int | None = None):
        super().__init__(tasks)
        if not lr > 0:
            raise ConfigError(f"{lr} must be > 0", key="lr")
        self.alpha = float(alpha)
        self.param_index = param_index
        self.task_weights = nn.Parameter(torch.ones(len(self.tasks)))
        self.optimizer = torch.optim.Adam([self.task_weights], lr=lr)
        self.register_buffer("initial_losses", torch.ones(len(self.tasks)))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._layer_grads: Tensor | None = None  # T×|W|, summed over the step's micro-batches

    def layer(self, shared_params: list[nn.Parameter]) -> nn.Parameter:
        """The shared parameter W whose per-task gradient norms are balanced."""
        shared = [p for p in shared_params if p.requires_grad]
        if self.param_index is not None:
            if not -len(shared) <= self.param_index < len(shared):
                raise ConfigError(f"{self.param_index} is out of range for {len(shared)} shared parameters",
                                  key="balancer.param_index")
            return shared[self.param_index]
        matrices = [p for p in shared if p.dim() >= 2]
        if not matrices:
            raise ConfigError("gradnorm found no shared parameter with >= 2 dims; set balancer.param_index",
                              key="balancer")
        return matrices[-1]

    def current_weights(self, losses: Tensor) -> Tensor:
        return self.task_weights.detach().to(losses.device)

    def backward(self, losses: Mapping[str, Tensor], shared_params: list[nn.Parameter]) -> dict[str, float]:
        layer = self.layer(shared_params)
        stacked = self.stack_losses(losses)
        rows = []
        for loss in stacked:
            (grad,) = torch.autograd.grad(loss, layer, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros(layer.numel(), device=layer.device) if grad is None else grad.reshape(-1).float())
        grads = torch.stack(rows)
        self._layer_grads = grads if self._layer_grads is None else self._layer_grads + grads
        return super().backward(dict(zip(self.tasks, stacked)), shared_params)

    def finalize(self, shared_params: list[nn.Parameter]) -> None:
        if self.micro_batches == 0:
            return
        n = len(self.tasks)
        stats = torch.cat([self.step_losses.to(self._layer_grads.device), self._layer_grads.reshape(-1)])
        self.step_losses.zero_()
        self.micro_batches = 0
        self._layer_grads = None
        stats = mean_across_ranks(stats).double()
        device = self.task_weights.device
        losses, norms = stats[:n].to(device), stats[n:].view(n, -1).norm(dim=1).to(device)
        if self.steps == 0:
            self.initial_losses.copy_(losses)
        weights = self.task_weights.detach().double()
        weighted_norms = weights * norms
        relative = losses / self.initial_losses.double()
        target = weighted_norms.mean() * (relative / relative.mean()) ** self.alpha
        self.step_own_parameter(self.task_weights, torch.sign(weighted_norms - target) * norms)
        with torch.no_grad():
            self.task_weights.mul_(n / self.task_weights.sum())
        self.steps += 1
