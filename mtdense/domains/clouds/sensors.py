"""Sensor radiometry: digital numbers (DN) ↔ top-of-atmosphere / surface reflectance.

- ``landsat8_l1``: Landsat-8 OLI Level-1 DN (38-Cloud / 95-Cloud), reflectance = 2.0e-5 · DN − 0.1
  (the REFLECTANCE_MULT_BAND_x / REFLECTANCE_ADD_BAND_x of every Collection-1 MTL file; sun-angle
  correction omitted, as the cloud datasets ship DN without it). Bands red, green, blue, nir
  (OLI B4, B3, B2, B5), the order of the 38-Cloud repository.
- ``sentinel2_l2a``: Sentinel-2 L2A (On Cloud N) surface reflectance = DN / 10 000 (processing
  baselines before 04.00, which the 2018–2020 challenge chips predate). Bands B02, B03, B04, B08.

DN 0 is nodata in both. The dataset classes feed the network reflectance; the on-board ONNX
export puts the same affine map inside the graph, so the satellite feeds raw DN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtdense.errors import ConfigError


@dataclass(frozen=True)
class Sensor:
    name: str
    bands: tuple[str, ...]
    gain: float
    offset: float

    def reflectance(self, dn: np.ndarray) -> np.ndarray:
        return (dn.astype(np.float32) * np.float32(self.gain) + np.float32(self.offset)).astype(np.float32)

    def digital_numbers(self, reflectance: np.ndarray) -> np.ndarray:
        """Inverse map, rounded and clipped to 1..65535 (0 stays reserved for nodata)."""
        dn = np.rint((reflectance - self.offset) / self.gain)
        return np.clip(dn, 1, 65535).astype(np.uint16)


SENSORS = {
    "landsat8_l1": Sensor("landsat8_l1", ("red", "green", "blue", "nir"), 2.0e-5, -0.1),
    "sentinel2_l2a": Sensor("sentinel2_l2a", ("B02", "B03", "B04", "B08"), 1.0e-4, 0.0),
}


def sensor(name: str) -> Sensor:
    if name not in SENSORS:
        raise ConfigError(f"unknown sensor {name!r}; known: {', '.join(SENSORS)}", key="sensor")
    return SENSORS[name]


def select_part(ids: list[str], part: str, val_fraction: float) -> set[str]:
    """Deterministic hold-out by group id (scene or chip): the last ``ceil(fraction · n)`` sorted
    ids form ``val``, the rest ``train``; ``all`` keeps every id."""
    if part not in ("all", "train", "val"):
        raise ConfigError(f"must be one of all, train, val; got {part!r}", key="part")
    groups = sorted(set(ids))
    if part == "all":
        return set(groups)
    n_val = int(np.ceil(val_fraction * len(groups))) if val_fraction > 0 else 0
    if n_val >= len(groups) and part == "train":
        raise ConfigError(f"val_fraction {val_fraction} leaves no training group of {len(groups)}", key="val_fraction")
    return set(groups[len(groups) - n_val:]) if part == "val" else set(groups[:len(groups) - n_val])
