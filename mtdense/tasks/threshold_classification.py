"""Per-pixel classes derived from a continuous target by thresholds (rain classes from rain rate).

With thresholds τ_1 < … < τ_K a value v gets class k = #{τ_i ≤ v} (the "≥ τ is an event"
convention of precipitation verification), so one threshold gives rain/no-rain and
(0.5, 2, 5, 10) mm/h give five intensity classes. The model outputs K+1 logits.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from mtdense.registry import TASKS
from mtdense.errors import ConfigError
from mtdense.tasks.segmentation import SegmentationTask


@TASKS.register("threshold_classification")
class ThresholdClassificationTask(SegmentationTask):
    """Classes of a continuous target by ``thresholds`` (K thresholds → K+1 classes, "≥ τ" is an
    event); ``event_probability`` gives P(class ≥ level) for gates and verification."""

    conformance_kwargs = {"target": "height", "thresholds": [0.5, 1.5]}

    def __init__(self, name: str, target: str, thresholds: list[float], loss: Mapping[str, Any] | str = "ce",
                 metrics: list | None = None):
        thresholds = [float(t) for t in thresholds]
        if not thresholds or sorted(thresholds) != thresholds or len(set(thresholds)) != len(thresholds):
            raise ConfigError(f"need strictly increasing values, got {thresholds}", key="thresholds")
        # per-class metric keys: iou_below_0.5, iou_0.5-2, ..., iou_10_plus
        names = ([f"below_{thresholds[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(thresholds, thresholds[1:])]
                 + [f"{thresholds[-1]:g}_plus"])
        super().__init__(name, len(thresholds) + 1, target, loss, metrics, class_names=names)
        self.register_buffer("thresholds", torch.tensor(thresholds, dtype=torch.float32), persistent=False)

    def postprocessing(self):
        return {**super().postprocessing(), "thresholds": [float(f"{t:.7g}") for t in self.thresholds.tolist()]}

    def classes_of(self, value: torch.Tensor) -> torch.Tensor:
        """Class index of each value: number of thresholds that are ≤ value."""
        return torch.bucketize(value.float(), self.thresholds, right=True)

    def target_from(self, batch):
        value, valid = super().target_from(batch)
        return self.classes_of(value), valid

    def event_probability(self, raw: torch.Tensor, level: int = 1) -> torch.Tensor:
        """P(class ≥ level), e.g. the rain probability for level 1."""
        return self.probabilities(raw)[:, level:].sum(dim=1)
