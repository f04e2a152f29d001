"""Precipitation verification metrics accumulated over a whole dataset (DDP-safe sums).

Categorical scores from the 2x2 contingency table at each rain-rate threshold (WWRP/WGNE Joint
Working Group on Forecast Verification Research, "Forecast verification: methods", and Wilks,
Statistical Methods in the Atmospheric Sciences, ch. 9). An event is ``value >= threshold``
(mm/h) for both prediction and reference. With hits H, misses M, false alarms F, correct
negatives Z:  POD = H/(H+M), FAR = F/(H+F), CSI = H/(H+M+F), F1 = 2H/(2H+M+F),
frequency bias = (H+F)/(H+M). An undefined score (zero denominator) is NaN.

Continuous scores from running sums n, sum p, sum o, sum p^2, sum o^2, sum p*o, sum |p-o| in
float64: RMSE, MAE, Pearson CC, mean error (p - o) and relative bias 100 (sum p - sum o)/sum o.
Only valid pixels count. Thresholds 0.5/2/5/10 mm/h follow MTCF (Yang et al. 2021, Remote Sens.
13:2310).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics import Metric

from mtdense.registry import METRICS
from mtdense.errors import ConfigError
from mtdense.metrics.nonfinite import NonFiniteCount

DEFAULT_THRESHOLDS = (0.5, 2.0, 5.0, 10.0)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.full_like(num, float("nan")))


def _valid_pairs(metric: NonFiniteCount, pred, target, valid) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and references at valid pixels with a finite reference and prediction; valid
    pixels with a non-finite prediction are counted by ``metric``."""
    if pred.shape != target.shape or target.shape != valid.shape:
        raise ValueError(f"precipitation metric: pred {tuple(pred.shape)}, target {tuple(target.shape)} and "
                         f"valid {tuple(valid.shape)} must have the same shape")
    mask = metric.scorable(torch.isfinite(pred), valid.bool() & torch.isfinite(target))
    return pred[mask].double(), target[mask].double()


@METRICS.register("precip_categorical")
class PrecipCategorical(NonFiniteCount, Metric):
    """POD, FAR, CSI, F1 and frequency bias per rain-rate threshold (event: value >= threshold),
    and ``nonfinite_pred``."""

    full_state_update = False

    def __init__(self, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, **kwargs):
        super().__init__(**kwargs)
        if not thresholds or any(float(t) <= 0 for t in thresholds):
            raise ConfigError(f"{list(thresholds)}; give one or more positive rain rates in mm/h", key="thresholds")
        self.thresholds = [float(t) for t in thresholds]
        for name in ("hits", "misses", "false_alarms", "correct_negatives"):
            self.add_state(name, default=torch.zeros(len(self.thresholds), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_nonfinite_state()

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        p, o = _valid_pairs(self, pred, target, valid)
        thr = torch.tensor(self.thresholds, dtype=torch.float64, device=p.device)[:, None]
        pe, oe = p[None] >= thr, o[None] >= thr
        self.hits += (pe & oe).sum(1)
        self.misses += (~pe & oe).sum(1)
        self.false_alarms += (pe & ~oe).sum(1)
        self.correct_negatives += (~pe & ~oe).sum(1)

    def compute(self) -> dict[str, torch.Tensor]:
        h, m, f = self.hits, self.misses, self.false_alarms
        scores = {"pod": _ratio(h, h + m), "far": _ratio(f, h + f), "csi": _ratio(h, h + m + f),
                  "f1": _ratio(2 * h, 2 * h + m + f), "bias": _ratio(h + f, h + m)}
        out = {f"{name}@{t:g}": values[i] for name, values in scores.items() for i, t in enumerate(self.thresholds)}
        return {**out, "nonfinite_pred": self.nonfinite_pred()}


@METRICS.register("precip_continuous")
class PrecipContinuous(NonFiniteCount, Metric):
    """RMSE, MAE, Pearson CC, mean error and relative bias (%) over valid pixels, and ``nonfinite_pred``."""

    full_state_update = False
    _SUMS = ("n", "sum_p", "sum_o", "sum_pp", "sum_oo", "sum_po", "sum_abs")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in self._SUMS:
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_nonfinite_state()

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        p, o = _valid_pairs(self, pred, target, valid)
        self.n += p.numel()
        self.sum_p += p.sum()
        self.sum_o += o.sum()
        self.sum_pp += (p * p).sum()
        self.sum_oo += (o * o).sum()
        self.sum_po += (p * o).sum()
        self.sum_abs += (p - o).abs().sum()

    def compute(self) -> dict[str, torch.Tensor]:
        n = self.n
        cov = n * self.sum_po - self.sum_p * self.sum_o
        var_p = (n * self.sum_pp - self.sum_p**2).clamp(min=0)
        var_o = (n * self.sum_oo - self.sum_o**2).clamp(min=0)
        mse = _ratio(self.sum_pp - 2 * self.sum_po + self.sum_oo, n).clamp(min=0)
        return {"rmse": mse.sqrt(), "mae": _ratio(self.sum_abs, n), "cc": _ratio(cov, (var_p * var_o).sqrt()),
                "me": _ratio(self.sum_p - self.sum_o, n), "rbias": 100 * _ratio(self.sum_p - self.sum_o, self.sum_o),
                "nonfinite_pred": self.nonfinite_pred()}


@METRICS.register("precipitation")
class Precipitation(Metric):
    """Categorical scores at ``thresholds`` plus continuous scores, from the two metrics above."""

    full_state_update = False

    def __init__(self, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, **kwargs):
        super().__init__(**kwargs)
        self.categorical = PrecipCategorical(thresholds, **kwargs)
        self.continuous = PrecipContinuous(**kwargs)

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        self.categorical.update(pred, target, valid)
        self.continuous.update(pred, target, valid)

    def compute(self) -> dict[str, torch.Tensor]:
        return {**self.categorical.compute(), **self.continuous.compute()}

    def reset(self) -> None:
        super().reset()
        self.categorical.reset()
        self.continuous.reset()
