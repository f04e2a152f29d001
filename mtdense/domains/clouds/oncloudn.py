"""On Cloud N (Sentinel-2) chips: reader and dataset ``oncloudn``.

Layout (DrivenData "On Cloud N: Cloud Cover Detection Challenge" 2022; Radiant MLHub
``ref_cloud_cover_detection_challenge_v1``)::

    <root>/train_features/<chip_id>/{B02,B03,B04,B08}.tif    512×512 uint16 GeoTIFF, 0 = nodata
    <root>/train_labels/<chip_id>.tif                         512×512 uint8, 1 = cloud
    <root>/train_metadata.csv                                 chip_id, location, datetime, cloudpath

``root`` may also be the folder above (``<root>/train/…``, torchgeo's layout). Pixels where any
band is 0 are nodata: invalid for the loss and the metrics. CRS (WKT/EPSG string) and the affine
transform of B02 are kept in ``meta``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from mtdense.domains.clouds.raster_io import binary_mask, read_band
from mtdense.domains.clouds.sensors import select_part
from mtdense.domains.clouds.sensors import sensor as find_sensor
from mtdense.errors import DataError
from mtdense.registry import DATASETS

BANDS = ("B02", "B03", "B04", "B08")


def find_root(root: Path) -> Path:
    for candidate in (root, root / "train"):
        if (candidate / "train_metadata.csv").is_file():
            return candidate
    raise DataError(f"{root}: not an On Cloud N folder (no train_metadata.csv here or in train/)")


def read_metadata(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "chip_id" not in rows[0]:
        raise DataError(f"{path}: metadata CSV needs a chip_id column (chip_id, location, datetime, cloudpath)")
    return rows


def read_chip(root: str | Path, chip_id: str) -> dict:
    """{"dn": 4×H×W uint16 (B02, B03, B04, B08), "mask": H×W uint8 0/1 or None, "crs", "transform"}."""
    root = Path(root)
    folder = root / "train_features" / chip_id
    first, geo = read_band(folder / f"{BANDS[0]}.tif", what=f"{BANDS[0]} band")
    bands = [first] + [read_band(folder / f"{b}.tif", first.shape, f"{b} band")[0] for b in BANDS[1:]]
    label = root / "train_labels" / f"{chip_id}.tif"
    mask = None
    if (root / "train_labels").is_dir():
        mask = binary_mask(read_band(label, first.shape, "label")[0], label)
    return {"dn": np.stack(bands), "mask": mask, "crs": geo["crs"] or "", "transform": geo["transform"]}


@DATASETS.register("oncloudn")
class OnCloudNDataset(Dataset):
    """On Cloud N chips as samples: image = L2A reflectance (4 bands), target ``cloud`` 0/1."""

    normalization = None  # inputs are reflectance (already scaled from DN); no dataset statistics assumed

    @staticmethod
    def conformance_kwargs(workdir: Path) -> dict:
        """Two tiny SYNTHETIC chips in the On Cloud N layout (for ``mtdense.testing``)."""
        from mtdense.domains.clouds.synth_writers import write_tiny_cloud_data

        return {"root": str(write_tiny_cloud_data(workdir) / "oncloudn")}

    def __init__(self, root: str, part: str = "all", val_fraction: float = 0.2, sensor: str = "sentinel2_l2a",
                 transform: Callable[[dict], dict] | None = None):
        self.root = find_root(Path(root))
        self.rows = read_metadata(self.root / "train_metadata.csv")
        keep = select_part([r["chip_id"] for r in self.rows], part, val_fraction)
        self.rows = [r for r in self.rows if r["chip_id"] in keep]
        self.sensor = find_sensor(sensor)
        self.channel_names = list(BANDS)
        self.target_keys = ["cloud"]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        chip = read_chip(self.root, row["chip_id"])
        dn = chip["dn"]
        data = (dn > 0).all(0)
        labelled = chip["mask"] is not None
        mask = chip["mask"] if labelled else np.zeros(dn.shape[1:], np.uint8)
        sample = {
            "image": torch.from_numpy(np.where(data, self.sensor.reflectance(dn), 0.0).astype(np.float32)),
            "targets": {"cloud": torch.from_numpy(mask.astype(np.int64))},
            "valid": {"cloud": torch.from_numpy(data & labelled)},
            "meta": {"id": row["chip_id"], "location": row.get("location", ""), "datetime": row.get("datetime", ""),
                     "crs": chip["crs"], "transform": torch.tensor(chip["transform"], dtype=torch.float64)},
        }
        return self.transform(sample) if self.transform else sample
