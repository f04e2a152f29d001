"""Cloud-mask metrics: On Cloud N's dataset-level Jaccard and the 38-Cloud set.

- ``jaccard``: |A∩B| / |A∪B| of the cloud class with intersection and union summed over every
  valid pixel of the evaluation set (On Cloud N challenge metric; DrivenData 2022).
- ``mean_chip_jaccard``: mean over chips of each chip's Jaccard. A chip whose ground truth and
  prediction are both all clear (empty union) is *explicitly* scored 1 (a perfect clear-sky
  answer) and counted in ``clear_chips``; ``mean_cloudy_chip_jaccard`` averages only chips with
  a non-empty union. Chips without any valid pixel are skipped.
- ``precision``, ``recall``, ``specificity``, ``accuracy`` (overall accuracy) from the summed
  confusion counts, as the 38-Cloud papers report them (Mohajerani & Saeedi, IGARSS 2019).
  A ratio with an empty denominator is NaN.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from mtdense.registry import METRICS


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return num / den if den > 0 else torch.tensor(float("nan"), dtype=torch.float64)


@METRICS.register("cloud")
class CloudMetrics(Metric):
    """Binary cloud masks (class 1 = cloud), B×H×W class ids."""

    full_state_update = False
    higher_is_better = True
    conformance_kwargs = {"num_classes": 2}  # binary masks only

    def __init__(self, num_classes: int = 2):
        super().__init__()
        if num_classes != 2:
            raise ValueError(f"cloud metric: binary masks only (num_classes 2), got {num_classes}")
        for name in ("tp", "fp", "fn", "tn", "chip_jaccard_sum", "cloudy_jaccard_sum", "chips", "clear_chips"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        p, t, v = pred.bool(), target.bool(), valid.bool()
        dims = tuple(range(1, p.ndim))
        tp = (p & t & v).sum(dims).double()
        fp = (p & ~t & v).sum(dims).double()
        fn = (~p & t & v).sum(dims).double()
        tn = (~p & ~t & v).sum(dims).double()
        self.tp += tp.sum()
        self.fp += fp.sum()
        self.fn += fn.sum()
        self.tn += tn.sum()
        has_pixels = v.sum(dims) > 0
        union = tp + fp + fn
        clear = has_pixels & (union == 0)
        cloudy = has_pixels & (union > 0)
        per_chip = tp / union.clamp(min=1)
        self.chips += has_pixels.sum()
        self.clear_chips += clear.sum()
        self.cloudy_jaccard_sum += per_chip[cloudy].sum()
        self.chip_jaccard_sum += per_chip[cloudy].sum() + clear.sum()

    def compute(self) -> dict[str, torch.Tensor]:
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        return {
            "jaccard": _ratio(tp, tp + fp + fn),
            "mean_chip_jaccard": _ratio(self.chip_jaccard_sum, self.chips),
            "mean_cloudy_chip_jaccard": _ratio(self.cloudy_jaccard_sum, self.chips - self.clear_chips),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp),
            "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
            "clear_chips": self.clear_chips.clone(),
        }
