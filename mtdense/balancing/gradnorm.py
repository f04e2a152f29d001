"""GradNorm: Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018.

Task weights w_t = T · softmax(theta)_t (theta init 0, so w_t = 1): always positive and
summing to T, the paper's renormalisation made exact. This softmax parametrisation is
LibMTL's (``GradNorm``: ``loss_scale = task_num * softmax(loss_scale)``); with the paper's
raw weights a task whose weighted gradient stays above its target is pushed below zero
(measured before this change: the depth weight reached -0.06 by step 60 with CBIM on the
street pair). The network receives sum_t w_t L_t (+ the couplings with their own configured weight).

On W, the last layer every task loss reaches: G_t = ||grad_W w_t L_t||, Gbar = mean_t G_t,
r_t = Ltilde_t / mean(Ltilde) with Ltilde_t = L_t / L_t(0);
L_grad = sum_t |G_t - Gbar r_t^alpha| with the target treated as a constant (paper, Sec.
3.2), so dL_grad/dw_t = sign(G_t - target_t) ||grad_W L_t||, chained through the softmax to
theta. alpha = 1.5 (the paper's NYUv2 value). theta is updated in ``finalize`` by the
balancer's own Adam (``lr``), from the step's per-task gradients of W and losses summed
over micro-batches and averaged over DDP ranks (one all_reduce), so accumulation is exact.
L_t(0) are the losses of the first step.

W: by default the parameter with >= 2 dims that *all* task losses reach and that lies
closest to them in the autograd graph (``gradients.last_common_layer``: the true last shared
layer; with interaction modules this is usually the last interaction all branches pass,
not the last entry of the shared-parameter list). ``param_index`` instead picks an entry of
``shared_params`` (Python indexing, -1 = last); it must be reached by every task loss.
"""


from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from mtdense.balancing.base import WeightedLossBalancer, mean_across_ranks
from mtdense.balancing.gradients import graph_leaves, last_common_layer
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
        self.logits = nn.Parameter(torch.zeros(len(self.tasks)))
        self.optimizer = torch.optim.Adam([self.logits], lr=lr)
        self.register_buffer("initial_losses", torch.ones(len(self.tasks)))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._layer_grads: Tensor | None = None  # T×|W|, summed over the step's micro-batches
        # W, chosen on the first backward from the autograd graph (deterministic, so not saved);
        # held in a list so that nn.Module does not register the model's parameter as ours
        self._layer: list[nn.Parameter] = []

    @property
    def layer(self) -> nn.Parameter | None:
        """The shared parameter W whose per-task gradient norms are balanced (None before the first step)."""
        return self._layer[0] if self._layer else None

    def task_weights(self) -> Tensor:
        """w = T · softmax(theta): positive, summing to T."""
        return len(self.tasks) * torch.softmax(self.logits.detach(), dim=0)

    def _choose_layer(self, losses: Tensor, shared_params: list[nn.Parameter]) -> nn.Parameter:
        shared = [p for p in shared_params if p.requires_grad]
        if self.param_index is None:
            layer = last_common_layer(list(losses), shared)
            if layer is None:
                raise ConfigError("gradnorm found no parameter with >= 2 dims that every task loss reaches; "
                                  "share an encoder between the tasks or use another balancer", key="balancer")
            return layer
        if not -len(shared) <= self.param_index < len(shared):
            raise ConfigError(f"{self.param_index} is out of range for {len(shared)} shared parameters",
                              key="balancer.param_index")
        layer = shared[self.param_index]
        if not all(any(leaf is layer for leaf in graph_leaves(loss)) for loss in losses):
            raise ConfigError(f"shared parameter {self.param_index} is not reached by every task loss; "
                              "remove param_index to use the last layer all tasks share", key="balancer.param_index")
        return layer

    def current_weights(self, losses: Tensor) -> Tensor:
        return self.task_weights().to(losses.device)

    def backward(self, losses: Mapping[str, Tensor], shared_params: list[nn.Parameter],
                 couplings: Tensor | None = None) -> dict[str, float]:
        stacked = self.stack_losses(losses)
        if not self._layer:
            self._layer.append(self._choose_layer(stacked, shared_params))
        rows = []
        for loss in stacked:
            (grad,) = torch.autograd.grad(loss, self.layer, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros(self.layer.numel(), device=self.layer.device) if grad is None
                        else grad.reshape(-1).float())
        grads = torch.stack(rows)
        self._layer_grads = grads if self._layer_grads is None else self._layer_grads + grads
        return super().backward(dict(zip(self.tasks, stacked)), shared_params, couplings)

    def finalize(self, shared_params: list[nn.Parameter]) -> None:
        if self.micro_batches == 0:
            return
        n = len(self.tasks)
        stats = torch.cat([self.step_losses.to(self._layer_grads.device), self._layer_grads.reshape(-1)])
        self.step_losses.zero_()
        self.micro_batches = 0
        self._layer_grads = None
        stats = mean_across_ranks(stats).double()
        device = self.logits.device
        losses, norms = stats[:n].to(device), stats[n:].view(n, -1).norm(dim=1).to(device)
        if self.steps == 0:
            self.initial_losses.copy_(losses)
        weights = self.task_weights().double()
        weighted_norms = weights * norms
        relative = losses / self.initial_losses.double()
        target = weighted_norms.mean() * (relative / relative.mean()) ** self.alpha
        grad_w = torch.sign(weighted_norms - target) * norms
        z = weights / n
        self.step_own_parameter(self.logits, n * (z * grad_w - z * (z @ grad_w)))  # chain rule through T·softmax
        self.steps += 1
