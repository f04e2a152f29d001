"""Classification–estimation consistency: the class implied by the rain-rate estimate must agree
with the classifier (MTCF, Yang et al., Remote Sensing 13(12):2310, 2021, §3.3).

The paper's exact form is not public (see docs/seeds.md §1.2); this is mtdense's
reconstruction. With class thresholds τ_1 < … < τ_K of the classification task and the
estimate r̂ (mm/h, before any gating), the soft class distribution implied by the estimate is

    s_k = σ((log(r̂ + ε) − log τ_k) / T)        (soft "r̂ ≥ τ_k", s_0 = 1, s_{K+1} = 0)
    q_k = s_k − s_{k+1}                          k = 0 … K

with ε = 0.01·τ_1 and a dimensionless temperature T (default 0.25). Why the log scale: rain
rates span orders of magnitude and r̂ ≥ 0, so a threshold on the linear scale,
σ((r̂ − τ)/T), never falls below σ(−τ/T) on dry pixels (0.27 for τ = T = 0.1 mm/h) and teaches
the classifier P(rain) ≈ 0.2–0.4 where the estimate says "dry" (measured on the synthetic
precip pair: dry pixels with P(rain) > 0.5 rose from 5.7 % to 23 %). In log space the same T
means the same *relative* softness at every threshold (r̂ = τ·e^{±T} gives σ(±1)), r̂ = τ gives
exactly 0.5, and a dry estimate r̂ = 0 gives s = σ(log(0.01)/T) = 1e-8 for T = 0.25 (below
0.01 for any T ≤ 1): the implied class is "dry" in the limit, as it must be.

and the classifier's softmax p is pulled towards it:

    L = CE(p, sg(q))                      direction "estimation_teaches" (E teaches C, default)
      + CE(q, sg(p))                      added for direction "both"

CE(a, b) = −Σ_k b_k log a_k, averaged over pixels. With one threshold this is the binary
cross-entropy BCE(p_rain, sg(q)) of seeds.md. ``pixels: all`` also uses pixels without a valid
label (the constraint needs no label); ``pixels: valid`` restricts it to labelled pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from mtdense.losses.masked import masked_mean
from mtdense.registry import COUPLINGS
from mtdense.errors import ConfigError

DRY_FRACTION = 0.01  # ε = DRY_FRACTION · τ_1: "no rain" sits two decades below the lowest threshold


@COUPLINGS.register("class_estimate_consistency")
class ClassEstimateConsistency(nn.Module):
    conformance_kwargs = {"classification": "rain_class", "estimation": "rain_rate"}  # the kit's standard tasks

    def __init__(self, tasks: nn.ModuleDict, classification: str, estimation: str, temperature: float = 0.25,
                 direction: str = "estimation_teaches", pixels: str = "all"):
        super().__init__()
        for role, name in (("classification", classification), ("estimation", estimation)):
            if name not in tasks:
                raise ConfigError(f"{name!r} is not a task; tasks: {', '.join(tasks)}", key=role)
        if not hasattr(tasks[classification], "thresholds"):
            raise ConfigError(f"{classification!r} must be a threshold_classification task", key="classification")
        if direction not in ("estimation_teaches", "both", "classification_teaches"):
            raise ConfigError(f"{direction!r} is not one of estimation_teaches, both, classification_teaches",
                              key="direction")
        if pixels not in ("all", "valid"):
            raise ConfigError(f"{pixels!r} is not one of all, valid", key="pixels")
        if temperature <= 0:
            raise ConfigError(f"must be > 0, got {temperature}", key="temperature")
        self.cls_name, self.est_name = classification, estimation
        self.cls_task, self.est_task = tasks[classification], tasks[estimation]
        self.temperature, self.direction, self.pixels = temperature, direction, pixels

    def implied_distribution(self, rate: torch.Tensor) -> torch.Tensor:
        """q (B×(K+1)×H×W): soft class distribution of a rain-rate map (B×H×W)."""
        tau = self.cls_task.thresholds.to(device=rate.device, dtype=torch.float32).view(1, -1, 1, 1)
        eps = DRY_FRACTION * tau.min()
        log_rate = torch.log(rate.float().clamp_min(0.0)[:, None] + eps)
        s = torch.sigmoid((log_rate - torch.log(tau)) / self.temperature)
        ones, zeros = torch.ones_like(s[:, :1]), torch.zeros_like(s[:, :1])
        s = torch.cat([ones, s, zeros], dim=1)
        return (s[:, :-1] - s[:, 1:]).clamp_min(0.0)

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> torch.Tensor:
        log_p = outputs[self.cls_name].float().log_softmax(dim=1)
        q = self.implied_distribution(self.est_task.predict(outputs[self.est_name]))
        eps = 1e-6
        per_pixel = torch.zeros_like(log_p[:, 0])
        if self.direction in ("estimation_teaches", "both"):
            per_pixel = per_pixel - (q.detach() * log_p).sum(dim=1)
        if self.direction in ("classification_teaches", "both"):
            per_pixel = per_pixel - (log_p.exp().detach() * (q + eps).log()).sum(dim=1)
        if self.pixels == "valid":
            valid = self.cls_task.target_from(batch)[1]
        else:
            valid = torch.ones_like(per_pixel, dtype=torch.bool)
        return masked_mean(per_pixel, valid)
