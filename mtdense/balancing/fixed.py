"""Fixed loss weights: L = sum_t w_t L_t (linear scalarisation; equal weights by default).

The baseline every multi-task paper compares against ("equal weighting", "EW"/"LS" in
Navon et al., ICML 2022 and Liu et al., NeurIPS 2023). Default: w_t = 1 for every task, so
the total is the plain sum of the task losses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtdense.balancing.base import WeightedLossBalancer
from mtdense.registry import BALANCERS
from mtdense.errors import ConfigError


@BALANCERS.register("fixed")
class FixedWeights(WeightedLossBalancer):
    """Constant per-task weights, e.g. ``{"type": "fixed", "weights": {"rain": 1.0, "class": 0.5}}``."""

    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None):
        super().__init__(tasks)
        if weights is None:
            weights = dict.fromkeys(self.tasks, 1.0)
        unknown = [k for k in weights if k not in self.tasks]
        missing = [t for t in self.tasks if t not in weights]
        if unknown or missing:
            raise ConfigError(
                f"keys {sorted(weights)} must be exactly the tasks {self.tasks} "
                f"(unknown: {unknown or 'none'}, missing: {missing or 'none'}); give one weight per task", key="weights")
        negative = {t: weights[t] for t in self.tasks if not float(weights[t]) >= 0}
        if negative:
            raise ConfigError(f"{negative} must be >= 0 (a negative weight maximises a loss)", key="weights")
        self.register_buffer("weights", torch.tensor([float(weights[t]) for t in self.tasks]))

    def current_weights(self, losses: Tensor) -> Tensor:
        return self.weights
