"""SatRain (IPWG satellite precipitation benchmark) gridded scenes as a dataset (``satrain``).

Layout (SatRain repository; mtdense docs/formats.md (b')):
``<root>/<gmi|atms>/<training|validation>/<xs|s|m|l|xl>/gridded/YYYY/MM/DD/<source>_<YYYYmmddHHMMSS>.nc``
and ``<root>/<gmi|atms>/testing/<conus|austria|korea>/gridded/…``. ``geo`` files hold
``observations(latitude, longitude, channel=16)`` (visible % reflectance, infrared K); ``target``
files hold ``surface_precip`` (mm/h) with ``radar_quality_index`` and ``valid_fraction``.
SatRain's default target mask: radar quality index ≥ 0.5 and valid fraction ≥ 0.5; its
verification thresholds: 0.1 and 10 mm/h (``SATRAIN_THRESHOLDS``).

Inputs are the selected ``channels`` (0-based indices into the 16 geo channels; default the ten
infrared channels 6–15, i.e. ABI/AHI bands 7–16), normalised with per-channel mean/std computed
over the split's files (``normalization`` in raw units travels with the checkpoint).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mtdense.errors import ConfigError, DataError
from mtdense.registry import DATASETS

SATRAIN_THRESHOLDS = (0.1, 10.0)
IR_CHANNELS = tuple(range(6, 16))
_NAME = re.compile(r"^(?P<source>[a-z_]+)_(?P<time>\d{14})\.nc$")


def satrain_pairs(folder: Path, source: str = "geo") -> list[tuple[Path, Path]]:
    """(input, target) file pairs of one SatRain folder (``…/gridded``), matched by time stamp."""
    inputs, targets = {}, {}
    for path in sorted(folder.rglob("*.nc")):
        match = _NAME.match(path.name)
        if match and match["source"] == source:
            inputs[match["time"]] = path
        elif match and match["source"] == "target":
            targets[match["time"]] = path
    return [(inputs[t], targets[t]) for t in sorted(inputs.keys() & targets.keys())]


def read_satrain_scene(geo_path: Path, target_path: Path, channels: Sequence[int] = IR_CHANNELS,
                       min_rqi: float = 0.5, min_valid_fraction: float = 0.5):
    """(image C×H×W float32 in raw units, rain H×W mm/h, valid H×W) of one gridded scene."""
    import xarray as xr

    try:
        with xr.open_dataset(geo_path) as geo, xr.open_dataset(target_path) as target:
            obs = geo["observations"].transpose("channel", "latitude", "longitude").values
            rain = target["surface_precip"].values.astype(np.float32)
            rqi = target["radar_quality_index"].values
            frac = target["valid_fraction"].values
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{geo_path} / {target_path}: not a SatRain gridded geo/target pair ({exc})") from exc
    if max(channels) >= obs.shape[0]:
        raise DataError(f"{geo_path}: has {obs.shape[0]} channels; channel index {max(channels)} does not exist")
    valid = np.isfinite(rain) & (rqi >= min_rqi) & (frac >= min_valid_fraction)
    return obs[list(channels)].astype(np.float32), np.where(valid, rain, 0.0).astype(np.float32), valid


@DATASETS.register("satrain")
class SatRainScenes(Dataset):
    """SatRain gridded scenes: ``root`` (the folder holding ``gmi``/``atms``), ``sensor``,
    ``split`` (``training``, ``validation`` or ``testing``), ``subset`` (size ``xs``…``xl`` for
    training/validation, domain ``conus``/``austria``/``korea`` for testing), ``source``
    (``geo``), ``channels``, the target-mask thresholds, ``normalize`` and ``transform`` (callable applied to
    the whole sample dict last)."""

    target_keys = ["rain_rate"]

    @staticmethod
    def conformance_kwargs(workdir: Path) -> dict:
        """Two tiny SYNTHETIC scenes (8×8, 16 channels) in the SatRain layout for ``mtdense.testing``."""
        import datetime as dt

        from mtdense.domains.precip.writers import write_satrain_pair

        rng = np.random.default_rng(0)
        lat, lon = 40.0 - 0.036 * np.arange(8), -100.0 + 0.036 * np.arange(8)
        for k in range(2):
            obs = rng.normal(260, 15, (8, 8, 16)).astype(np.float32)
            write_satrain_pair(Path(workdir) / "gmi" / "training" / "xs" / "gridded", dt.datetime(2020, 1, 1 + k),
                               obs, np.clip(250 - obs[..., 12], 0, None) / 3, lat, lon)
        return {"root": str(workdir), "split": "training", "subset": "xs"}

    def __init__(self, root: str | Path, split: str = "training", subset: str = "xs", sensor: str = "gmi",
                 source: str = "geo", channels: Sequence[int] = IR_CHANNELS, min_rqi: float = 0.5,
                 min_valid_fraction: float = 0.5, normalize: bool = True,
                 transform: Callable[[dict], dict] | None = None):
        folder = Path(root) / sensor / split / subset / "gridded"
        if not folder.is_dir():
            raise ConfigError(f"{folder} does not exist; check root/sensor/split/subset of the SatRain layout",
                              key="root")
        self.pairs = satrain_pairs(folder, source)
        if not self.pairs:
            raise ConfigError(f"{folder}: no {source}_*.nc files with matching target_*.nc", key="root")
        self.channels, self.min_rqi, self.min_valid_fraction = list(channels), min_rqi, min_valid_fraction
        self.channel_names = [f"{source}_{c + 1:02d}" for c in self.channels]
        self.channel_info = {n: {"description": f"SatRain {source} channel {c + 1}"} for n, c in
                             zip(self.channel_names, self.channels)}
        self.normalization = self._statistics() if normalize else None
        self.transform = transform

    def _statistics(self) -> dict[str, list[float]]:
        total = np.zeros(len(self.channels))
        total_sq = np.zeros(len(self.channels))
        count = np.zeros(len(self.channels))
        for geo, target in self.pairs:
            image = read_satrain_scene(geo, target, self.channels)[0].astype(np.float64)
            finite = np.isfinite(image)
            total += np.where(finite, image, 0).sum(axis=(1, 2))
            total_sq += np.where(finite, image**2, 0).sum(axis=(1, 2))
            count += finite.sum(axis=(1, 2))
        mean = total / np.maximum(count, 1)
        std = np.sqrt(np.maximum(total_sq / np.maximum(count, 1) - mean**2, 1e-12))
        return {"mean": mean.tolist(), "std": np.maximum(std, 1e-6).tolist()}

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        geo, target = self.pairs[i]
        image, rain, valid = read_satrain_scene(geo, target, self.channels, self.min_rqi, self.min_valid_fraction)
        if self.normalization is not None:
            mean, std = (np.asarray(self.normalization[k], np.float32)[:, None, None] for k in ("mean", "std"))
            image = (image - mean) / std
        image = np.nan_to_num(image, nan=0.0)
        sample = {"image": torch.from_numpy(np.ascontiguousarray(image, np.float32)),
                  "targets": {"rain_rate": torch.from_numpy(rain)}, "valid": {"rain_rate": torch.from_numpy(valid)},
                  "meta": {"id": geo.stem}}
        return self.transform(sample) if self.transform is not None else sample
