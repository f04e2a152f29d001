"""A classic spectral-threshold cloud mask, the non-learned reference of every cloud table.

In the spirit of the Sentinel-2 Level-2A scene classification (Sen2Cor: a red-band brightness
threshold, Main-Knorn et al., SPIE 2017) and Fmask's basic tests (Zhu & Woodcock, RSE 2012):
a pixel is cloud if it is bright (red reflectance > ``red_min``), white (Fmask whiteness
Σ|b − mean| / mean over blue, green, red < ``whiteness_max``) and hazy (haze-optimised
transform HOT = blue − 0.5·red − 0.08 > 0, Zhang et al., RSE 2002). Without SWIR/thermal bands
it cannot separate snow or sun glint from cloud — the confusers the learned models must beat.
Bands are found by name (38-Cloud red/green/blue/nir, On Cloud N B02/B03/B04/B08).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from mtdense.domains.clouds.metrics import CloudMetrics

BAND_ALIASES = {"blue": ("blue", "B02"), "green": ("green", "B03"), "red": ("red", "B04")}


def band_indices(channel_names: list[str]) -> dict[str, int]:
    out = {}
    for band, aliases in BAND_ALIASES.items():
        found = [i for i, n in enumerate(channel_names) if n in aliases]
        if not found:
            raise ValueError(f"threshold baseline: no {band} band among {channel_names}")
        out[band] = found[0]
    return out


def threshold_mask(reflectance: torch.Tensor, channel_names: list[str], red_min: float = 0.2,
                   whiteness_max: float = 0.7) -> torch.Tensor:
    """B×C×H×W reflectance → B×H×W cloud mask (int64 0/1)."""
    idx = band_indices(channel_names)
    blue, green, red = (reflectance[:, idx[b]] for b in ("blue", "green", "red"))
    mean = (blue + green + red) / 3
    whiteness = ((blue - mean).abs() + (green - mean).abs() + (red - mean).abs()) / mean.clamp(min=1e-6)
    hot = blue - 0.5 * red - 0.08
    return ((red > red_min) & (whiteness < whiteness_max) & (hot > 0)).long()


def score_threshold(dataset, batch_size: int = 8, **rule) -> dict[str, float]:
    """Cloud metrics of the threshold rule on a dataset's valid pixels."""
    metric = CloudMetrics()
    for batch in DataLoader(dataset, batch_size=batch_size):
        pred = threshold_mask(batch["image"], list(dataset.channel_names), **rule)
        metric.update(pred, batch["targets"]["cloud"], batch["valid"]["cloud"])
    return {k: float(v) for k, v in metric.compute().items()}
