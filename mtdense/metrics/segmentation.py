"""Semantic segmentation metrics from one dataset-level confusion matrix.

IoU_c = TP_c / (TP_c + FP_c + FN_c), summed over the whole evaluation set (Cityscapes
evaluation; SimonVandenhende/Multi-Task-Learning-PyTorch evaluation/eval_semseg.py). Pixels
with ``valid`` False (e.g. Cityscapes ignore label 255) are excluded.

Convention: a class that occurs neither in the ground truth nor in the prediction
(TP + FP + FN = 0) has IoU NaN and is left out of mIoU, so mIoU is the mean over the classes
present in the ground truth or the prediction. Pixel accuracy = trace / total valid pixels.
With two classes, ``jaccard`` is the IoU of class 1 (e.g. cloud), computed from dataset totals.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from mtdense.registry import METRICS
from mtdense.errors import ConfigError
from mtdense.metrics.nonfinite import NonFiniteCount


@METRICS.register("segmentation")
class SegmentationMetrics(NonFiniteCount, Metric):
    """Confusion-matrix metrics: ``miou``, ``pixel_acc``, ``iou_<class>`` (and ``jaccard`` if 2 classes),
    ``nonfinite_pred``. A prediction of -1 (no prediction: the logits were not finite) is left out
    of the confusion matrix and counts as wrong in ``pixel_acc``."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int, class_names: list[str] | None = None):
        super().__init__()
        if not (isinstance(num_classes, int) and num_classes >= 2):
            raise ConfigError(f"{num_classes!r} must be an integer >= 2", key="num_classes")
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(f"{len(class_names)} class_names for {num_classes} classes", key="class_names")
        self.num_classes = num_classes
        # per-class keys name the class (iou_sky); spaces become underscores
        self.class_keys = ["_".join(str(n).split()) for n in class_names] if class_names else list(range(num_classes))
        self.add_state("confusion", torch.zeros(num_classes, num_classes, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_nonfinite_state()

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        """pred, target: B×H×W class ids; valid: B×H×W bool. Rows of ``confusion`` are targets."""
        if pred.shape != target.shape or valid.shape != target.shape:
            raise ValueError(
                f"segmentation metric: pred {tuple(pred.shape)}, target {tuple(target.shape)} and valid "
                f"{tuple(valid.shape)} must have the same shape (pass class ids, not logits)"
            )
        keep = self.scorable(pred != -1, valid.bool())  # -1: the task had no finite logits there
        p, t = pred[keep].long(), target[keep].long()
        for name, ids in (("prediction", p), ("target", t)):
            if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise ValueError(
                    f"segmentation metric: {name} class ids span [{int(ids.min())}, {int(ids.max())}] at valid "
                    f"pixels, outside [0, {self.num_classes - 1}]; mark ignored pixels invalid"
                )
        counts = torch.bincount(t * self.num_classes + p, minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes)

    def compute(self) -> dict[str, torch.Tensor]:
        cm = self.confusion.double()
        tp = cm.diagonal()
        union = cm.sum(0) + cm.sum(1) - tp
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
        out = {"miou": iou.nanmean(), "pixel_acc": tp.sum() / (cm.sum() + self.nonfinite),
               "nonfinite_pred": self.nonfinite_pred()}
        out.update({f"iou_{key}": iou[c] for c, key in enumerate(self.class_keys)})
        if self.num_classes == 2:
            out["jaccard"] = iou[1]
        return out
