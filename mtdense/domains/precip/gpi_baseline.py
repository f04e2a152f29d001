"""GOES Precipitation Index (GPI) style baseline: a non-learned rule (kind ``rule``, name ``gpi``).

Arkin & Meisner (1987, Mon. Wea. Rev. 115:51-74): rain rate = 3 mm/h where the ~11 um window
brightness temperature is below 235 K, else 0. Here the window channel is AHI band 13 (10.4 um,
the clean longwave window; ``band: B14`` takes the 11.2 um one), in kelvin. ``mtdense bench``
scores the rule like a variant of a grid (``rules:`` of a pair, ``mtdense.bench.rules``: the
image is given back its raw units first); ``gpi_baseline_scores`` (``mtdense gpi``) scores it
on one split of a tile store. Either way it is the floor any learned model must beat.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader

from mtdense.domains.precip.tile_store import PrecipTiles
from mtdense.errors import ConfigError
from mtdense.metrics.precipitation import DEFAULT_THRESHOLDS, Precipitation
from mtdense.registry import RULES


def gpi_rain_rate(bt_kelvin: torch.Tensor, threshold_k: float = 235.0, rate_mm_h: float = 3.0) -> torch.Tensor:
    """GPI rain rate (mm/h) from window-channel brightness temperature (K)."""
    return torch.where(bt_kelvin < threshold_k, torch.full_like(bt_kelvin, rate_mm_h), torch.zeros_like(bt_kelvin))


@RULES.register("gpi")
class GPIRule:
    """GOES Precipitation Index (Arkin & Meisner 1987): window-band brightness temperature < 235 K → 3 mm/h, else 0."""

    conformance_kwargs = {"channel_names": ["B11", "B13", "B15"]}

    def __init__(self, channel_names: Sequence[str], band: str = "B13", threshold_k: float = 235.0,
                 rate_mm_h: float = 3.0, target: str = "rain_rate"):
        if band not in channel_names:
            raise ConfigError(f"{band!r} is not an input channel; channels: {', '.join(channel_names)}", key="band")
        if rate_mm_h <= 0:
            raise ConfigError(f"must be > 0 mm/h, got {rate_mm_h}", key="rate_mm_h")
        self.index = list(channel_names).index(band)
        self.threshold_k, self.rate_mm_h = float(threshold_k), float(rate_mm_h)
        self.targets = (target,)

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{target: B×H×W rain rate (mm/h)}`` from a B×C×H×W image in kelvin."""
        return {self.targets[0]: gpi_rain_rate(image[:, self.index].float(), self.threshold_k, self.rate_mm_h)}


def gpi_baseline_scores(store_path, split: str = "test", band: str = "B13", threshold_k: float = 235.0,
                        rate_mm_h: float = 3.0, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                        batch_size: int = 16) -> dict[str, float]:
    """Score the GPI rule on one split of the store: POD/FAR/CSI/F1/bias per threshold, RMSE, MAE, CC, ME, rbias."""
    tiles = PrecipTiles(store_path, split=split, bands=[band], normalize=False)
    rule = GPIRule(tiles.channel_names, band, threshold_k, rate_mm_h)
    metric = Precipitation(thresholds)
    for batch in DataLoader(tiles, batch_size=batch_size):
        metric.update(rule(batch["image"])["rain_rate"], batch["targets"]["rain_rate"], batch["valid"]["rain_rate"])
    return {name: float(value) for name, value in metric.compute().items()}
