"""Predictions that are not numbers are reported, never silently dropped.

A model that outputs NaN/Inf at some valid pixels (a diverged run, an fp16 overflow) used to
make every metric quietly average over fewer pixels. Metrics that mix in ``NonFiniteCount``
count those pixels, leave them out of their scores, report ``nonfinite_pred`` (the fraction of
valid pixels whose prediction is not finite; 0 for a healthy model) and warn when it is not 0.
"""

from __future__ import annotations

import warnings

import torch


class NonFiniteCount:
    """Mixin for a ``torchmetrics.Metric``: call ``add_nonfinite_state`` in ``__init__``,
    ``scorable(pred_ok, keep)`` in ``update`` and ``nonfinite_pred()`` in ``compute``."""

    def add_nonfinite_state(self) -> None:
        self.add_state("nonfinite", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("evaluated", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    def scorable(self, pred_ok: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``keep & pred_ok``, counting the kept pixels whose prediction is not usable."""
        self.nonfinite += (keep & ~pred_ok).sum()
        self.evaluated += keep.sum()
        return keep & pred_ok

    def nonfinite_pred(self) -> torch.Tensor:
        bad, total = int(self.nonfinite), int(self.evaluated)
        if bad:
            warnings.warn(f"{type(self).__name__}: {bad} of {total} valid pixels have NaN/Inf predictions; they are "
                          "left out of the scores and counted in nonfinite_pred", stacklevel=2)
        return torch.tensor(bad / total if total else 0.0, dtype=torch.float64)
