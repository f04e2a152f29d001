"""The monitored validation value that selects the ``best`` checkpoint.

``trainer.monitor`` names a key validation reports (``val/loss`` when unset; checked when the
experiment is built) and ``trainer.monitor_mode`` whether lower (``min``) or higher (``max``) is
better. A non-finite value never improves on the best so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Monitor:
    key: str
    maximize: bool

    @classmethod
    def from_config(cls, trainer: Mapping[str, Any]) -> "Monitor":
        """From the ``trainer`` config section (a DictConfig or a plain dict)."""
        return cls(trainer.get("monitor") or "val/loss", trainer.get("monitor_mode") == "max")

    def improves(self, value: float, best: float | None) -> bool:
        """``value`` is finite and better than ``best`` (any finite value is, when there is none)."""
        if not math.isfinite(value):
            return False
        return best is None or (value > best if self.maximize else value < best)
