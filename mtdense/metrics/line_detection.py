"""Foreground detection with a pixel tolerance, for thin structures (plantation rows, roads, edges).

A predicted foreground pixel is a true positive at tolerance k if a true foreground pixel lies
within Euclidean distance k of it; a true foreground pixel is recovered if a predicted one lies
within k (the relaxed precision/recall of road and line extraction, Wiedemann et al., 1998;
Mnih & Hinton, ECCV 2010):

    precision@k = #{pred px with d(px, true) ≤ k} / #pred px
    recall@k    = #{true px with d(px, pred) ≤ k} / #true px
    f1@k        = 2 P R / (P + R)

Counts are summed over the whole evaluation set (dataset-level), per image distance transforms
(scipy.ndimage.distance_transform_edt). Only valid pixels are counted as predictions or truths.
At k = 0 these are the plain pixel precision, recall and F1 of the foreground (classes ≥ 1).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torchmetrics import Metric

from mtdense.errors import ConfigError
from mtdense.registry import METRICS


def distance_to(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest True pixel of ``mask`` (inf if none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(~mask)


@METRICS.register("line_detection")
class LineDetection(Metric):
    """``precision@k``, ``recall@k``, ``f1@k`` for every tolerance k (pixels)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int = 2, tolerances: list[float] = (0, 2)):
        super().__init__()
        if not tolerances or any(not isinstance(k, (int, float)) or k < 0 for k in tolerances):
            raise ConfigError(f"{list(tolerances)!r} must be a non-empty list of distances >= 0 (pixels)",
                              key="tolerances")
        self.tolerances = [float(k) for k in tolerances]
        n = len(self.tolerances)
        for name in ("pred_hits", "true_hits"):
            self.add_state(name, torch.zeros(n, dtype=torch.int64), dist_reduce_fx="sum")
        for name in ("pred_count", "true_count"):
            self.add_state(name, torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        """pred, target: B×H×W class ids (foreground = id ≥ 1); valid: B×H×W bool."""
        if pred.shape != target.shape or valid.shape != target.shape:
            raise ValueError(f"line_detection metric: pred {tuple(pred.shape)}, target {tuple(target.shape)} and "
                             f"valid {tuple(valid.shape)} must have the same shape (pass class ids, not logits)")
        p = ((pred >= 1) & valid).cpu().numpy()
        t = ((target >= 1) & valid).cpu().numpy()
        ks = np.array(self.tolerances)
        pred_hits, true_hits = np.zeros(len(ks), np.int64), np.zeros(len(ks), np.int64)
        for pi, ti in zip(p, t):
            d_true, d_pred = distance_to(ti)[pi], distance_to(pi)[ti]
            pred_hits += (d_true[None] <= ks[:, None]).sum(1)
            true_hits += (d_pred[None] <= ks[:, None]).sum(1)
        self.pred_hits += torch.from_numpy(pred_hits).to(self.pred_hits.device)
        self.true_hits += torch.from_numpy(true_hits).to(self.true_hits.device)
        self.pred_count += int(p.sum())
        self.true_count += int(t.sum())

    def compute(self) -> dict[str, torch.Tensor]:
        precision = self.pred_hits.double() / self.pred_count.clamp(min=1)
        recall = self.true_hits.double() / self.true_count.clamp(min=1)
        f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12),
                         torch.zeros_like(precision))
        out = {}
        for i, k in enumerate(self.tolerances):
            tag = f"{k:g}"
            out.update({f"precision@{tag}": precision[i], f"recall@{tag}": recall[i], f"f1@{tag}": f1[i]})
        return out
