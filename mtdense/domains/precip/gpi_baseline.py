"""GOES Precipitation Index (GPI) style baseline on the precipitation tile store.

Arkin & Meisner (1987, Mon. Wea. Rev. 115:51-74): rain rate = 3 mm/h where the ~11 um window
brightness temperature is below 235 K, else 0. Here the window channel is AHI band 13 (10.4 um),
read in kelvin (un-normalised) from the store, and the result is scored with the same
precipitation metrics as the networks, so it is the floor any learned model must beat.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader

from mtdense.domains.precip.tile_store import PrecipTiles
from mtdense.metrics.precipitation import DEFAULT_THRESHOLDS, Precipitation


def gpi_rain_rate(bt_kelvin: torch.Tensor, threshold_k: float = 235.0, rate_mm_h: float = 3.0) -> torch.Tensor:
    """GPI rain rate (mm/h) from window-channel brightness temperature (K)."""
    return torch.where(bt_kelvin < threshold_k, torch.full_like(bt_kelvin, rate_mm_h), torch.zeros_like(bt_kelvin))


def gpi_baseline_scores(store_path, split: str = "test", band: str = "B13", threshold_k: float = 235.0,
                        rate_mm_h: float = 3.0, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                        batch_size: int = 16) -> dict[str, float]:
    """Score the GPI rule on one split of the store: POD/FAR/CSI/F1/bias per threshold, RMSE, MAE, CC, ME, rbias."""
    tiles = PrecipTiles(store_path, split=split, bands=[band], normalize=False)
    metric = Precipitation(thresholds)
    for batch in DataLoader(tiles, batch_size=batch_size):
        pred = gpi_rain_rate(batch["image"][:, 0], threshold_k, rate_mm_h)
        metric.update(pred, batch["targets"]["rain_rate"], batch["valid"]["rain_rate"])
    return {name: float(value) for name, value in metric.compute().items()}
