"""Every task must have valid labels somewhere in the training split, else it trains on nothing.

The trainer counts each task's valid label pixels on the device during the first epoch (no host
synchronisation per step) and checks the counts, summed over DDP ranks, once after it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mtdense.engine import distributed as dist_utils
from mtdense.errors import DataError


class LabelCoverage:
    """``count(batch)`` for every micro-batch of the first epoch; ``check()`` after it raises
    ``DataError`` naming each task without a single valid label pixel."""

    def __init__(self, tasks: nn.ModuleDict, device: torch.device):
        self.tasks = tasks
        self.counts = torch.zeros(len(tasks), dtype=torch.float64, device=device)

    def count(self, batch: dict[str, Any]) -> None:
        self.counts += torch.stack([batch["valid"][t.target].sum() for t in self.tasks.values()])

    def check(self) -> None:
        counts = dist_utils.sum_across_ranks(self.counts.clone())
        empty = [f"{name!r} (target {t.target!r})" for (name, t), c in zip(self.tasks.items(), counts.tolist()) if c == 0]
        if empty:
            raise DataError(f"the training split has no valid label for task {', '.join(empty)} in the whole first "
                            "epoch: every pixel is masked invalid; check the data's valid masks or remove the task")
