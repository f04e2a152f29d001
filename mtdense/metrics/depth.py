"""Depth error and accuracy metrics (Eigen et al., NeurIPS 2014).

Definitions follow nianticlabs/monodepth2 ``evaluate_depth.py`` ``compute_errors``:
AbsRel = mean(|d - p| / d), SqRel = mean((d - p)^2 / d), RMSE = sqrt(mean((d - p)^2)),
RMSE_log = sqrt(mean((log d - log p)^2)), delta_k = fraction with max(d/p, p/d) < 1.25^k.

Conventions (state them with results): evaluated pixels are ``valid`` with ground truth d in
(min_depth, max_depth]; predictions p are clamped to [min_depth, max_depth]; no median
scaling (supervised metric depth). Sums are accumulated in float64 over the whole dataset,
so every metric is a mean over all evaluated pixels — unlike monodepth2, which averages
per-image values; RMSE here is the square root of the dataset-level mean squared error.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from mtdense.registry import METRICS
from mtdense.errors import ConfigError
from mtdense.metrics.nonfinite import NonFiniteCount

_SUMS = ("abs_rel", "sq_rel", "sq_err", "sq_log_err", "delta1", "delta2", "delta3", "count")


@METRICS.register("depth")
class DepthMetrics(NonFiniteCount, Metric):
    """``abs_rel``, ``sq_rel``, ``rmse``, ``rmse_log``, ``delta1``, ``delta2``, ``delta3``, ``nonfinite_pred``."""

    full_state_update = False

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 80.0):
        super().__init__()
        if not 0 < min_depth < max_depth:
            raise ConfigError(f"need 0 < min_depth < max_depth, got min_depth={min_depth!r}, max_depth={max_depth!r}",
                              key="min_depth" if min_depth <= 0 else "max_depth")
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        for name in _SUMS:
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_nonfinite_state()

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        """pred, target: B×H×W depths (same unit as min/max_depth); valid: B×H×W bool."""
        if pred.shape != target.shape or valid.shape != target.shape:
            raise ValueError(
                f"depth metric: pred {tuple(pred.shape)}, target {tuple(target.shape)} and valid "
                f"{tuple(valid.shape)} must have the same shape"
            )
        gt = target.detach().double()
        keep = self.scorable(torch.isfinite(pred), valid & (gt > self.min_depth) & (gt <= self.max_depth))
        gt = gt[keep]
        p = pred.detach().double()[keep].clamp(self.min_depth, self.max_depth)
        ratio = torch.maximum(gt / p, p / gt)
        err = gt - p
        self.abs_rel += (err.abs() / gt).sum()
        self.sq_rel += (err**2 / gt).sum()
        self.sq_err += (err**2).sum()
        self.sq_log_err += ((gt.log() - p.log()) ** 2).sum()
        for k in (1, 2, 3):
            setattr(self, f"delta{k}", getattr(self, f"delta{k}") + (ratio < 1.25**k).sum())
        self.count += gt.numel()

    def compute(self) -> dict[str, torch.Tensor]:
        n = self.count  # 0 evaluated pixels -> NaN everywhere
        return {
            "abs_rel": self.abs_rel / n,
            "sq_rel": self.sq_rel / n,
            "rmse": (self.sq_err / n).sqrt(),
            "rmse_log": (self.sq_log_err / n).sqrt(),
            "delta1": self.delta1 / n,
            "delta2": self.delta2 / n,
            "delta3": self.delta3 / n,
            "nonfinite_pred": self.nonfinite_pred(),
        }
