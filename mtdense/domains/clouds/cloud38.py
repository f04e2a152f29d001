"""38-Cloud / 95-Cloud (Landsat-8) patches: reader, dataset ``cloud38`` and scene reassembly.

Layout (Mohajerani & Saeedi, IGARSS 2019; SorourMo/38-Cloud-A-Cloud-Segmentation-Dataset)::

    38-Cloud_training/train_{red,green,blue,nir}/<band>_patch_<n>_<row>_by_<col>_<scene>.TIF
    38-Cloud_training/train_gt/gt_patch_<n>_<row>_by_<col>_<scene>.TIF       uint8 0 / 255
    38-Cloud_training/training_patches_38-Cloud.csv (+ training_patches_38-Cloud_nonempty.csv)
    38-Cloud_test/test_{red,green,blue,nir}/…   test_patches_38-Cloud.csv   (no per-patch gt)
    38-Cloud_test/Entire_scene_gts/edited_corrected_gts_<scene>.TIF         full-scene masks

95-Cloud uses the same names (``95-cloud_training``, ``training_patches_95-cloud[_nonempty].csv``).
Patches are 384×384 uint16 L1 DN; the CSVs have one column ``name`` (patch stem without band
prefix or extension). All-zero patches at scene margins are flagged ``meta["empty"]``; pixels
whose four bands are all 0 (nodata) are invalid. In the test layout there are no per-patch
labels: every pixel is invalid and metrics come from ``assemble_scene`` against
``Entire_scene_gts``. Reassembly puts patch (row, col) at ((row−1)·384, (col−1)·384) and crops
the zero-padded grid to the full-scene mask, centred (the padding convention of the dataset's
evaluation code as we recall it — unverified against its Matlab source).
"""

from __future__ import annotations

import csv
import re
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

BANDS = ("red", "green", "blue", "nir")
PATCH = 384
NAME = re.compile(r"^patch_(\d+)_(\d+)_by_(\d+)_(.+)$")


def parse_patch_name(name: str) -> dict:
    """``patch_<n>_<row>_by_<col>_<scene>`` → {"n", "row", "col", "scene"} (1-based row/col)."""
    m = NAME.match(name)
    if not m:
        raise DataError(f"{name}: not a 38-Cloud patch name (patch_<n>_<row>_by_<col>_<scene id>)")
    return {"n": int(m[1]), "row": int(m[2]), "col": int(m[3]), "scene": m[4]}


def read_patch_list(path: str | Path) -> list[str]:
    """Patch names of a 38-/95-Cloud CSV (column ``name``)."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise DataError(f"{path}: cannot read patch list ({exc.strerror})") from None
    if not rows or "name" not in rows[0]:
        raise DataError(f"{path}: patch list must be a CSV with a 'name' column")
    return [r["name"].strip() for r in rows if r["name"].strip()]


def band_path(root: Path, prefix: str, band: str, name: str) -> Path:
    return root / f"{prefix}_{band}" / f"{band}_{name}.TIF"


def read_patch(root: str | Path, name: str, prefix: str = "train") -> dict:
    """One patch: {"dn": 4×H×W uint16 (red, green, blue, nir), "mask": H×W uint8 0/1 or None}."""
    root = Path(root)
    first, _ = read_band(band_path(root, prefix, BANDS[0], name), what=f"{BANDS[0]} band")
    bands = [first] + [read_band(band_path(root, prefix, b, name), first.shape, f"{b} band")[0] for b in BANDS[1:]]
    gt_file = root / f"{prefix}_gt" / f"gt_{name}.TIF"
    mask = None
    if (root / f"{prefix}_gt").is_dir():
        raw, _ = read_band(gt_file, first.shape, "ground-truth")
        mask = binary_mask(raw, gt_file)
    return {"dn": np.stack(bands), "mask": mask}


def find_layout(root: Path) -> str:
    """``train`` or ``test`` from the band folders present."""
    for prefix in ("train", "test"):
        if (root / f"{prefix}_red").is_dir():
            return prefix
    raise DataError(f"{root}: not a 38-/95-Cloud folder (no train_red/ or test_red/ inside)")


def list_patches(root: Path, prefix: str, patch_list: str | None, nonempty_only: bool) -> list[str]:
    """Names from the given CSV, else the dataset's own (``*_nonempty.csv`` if asked), else the red folder."""
    if patch_list:
        return read_patch_list(root / patch_list if not Path(patch_list).is_absolute() else patch_list)
    pattern = "*_nonempty.csv" if nonempty_only else "*atches_*.csv"
    csvs = sorted(p for p in root.glob(pattern) if nonempty_only or "nonempty" not in p.name)
    if csvs:
        return read_patch_list(csvs[0])
    if nonempty_only:
        raise DataError(f"{root}: nonempty_only needs a *_nonempty.csv patch list")
    return sorted(p.name[len("red_"):-len(".TIF")] for p in (root / f"{prefix}_red").glob("red_patch_*.TIF"))


@DATASETS.register("cloud38")
class Cloud38Dataset(Dataset):
    """38-/95-Cloud patches as samples: image = TOA reflectance (4 bands), target ``cloud`` 0/1."""

    normalization = None  # inputs are reflectance (already scaled from DN); no dataset statistics assumed

    @staticmethod
    def conformance_kwargs(workdir: Path) -> dict:
        """One tiny SYNTHETIC scene in the 38-Cloud layout (for ``mtdense.testing``)."""
        from mtdense.domains.clouds.synth_writers import write_tiny_cloud_data

        return {"root": str(write_tiny_cloud_data(workdir) / "38-Cloud_training")}

    def __init__(self, root: str, patch_list: str | None = None, nonempty_only: bool = False, part: str = "all",
                 val_fraction: float = 0.2, sensor: str = "landsat8_l1",
                 transform: Callable[[dict], dict] | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: 38-/95-Cloud folder not found")
        self.prefix = find_layout(self.root)
        names = list_patches(self.root, self.prefix, patch_list, nonempty_only)
        parsed = {n: parse_patch_name(n) for n in names}
        keep = select_part([p["scene"] for p in parsed.values()], part, val_fraction)
        self.names = [n for n in names if parsed[n]["scene"] in keep]
        self.parsed = parsed
        self.sensor = find_sensor(sensor)
        self.channel_names = list(BANDS)
        self.target_keys = ["cloud"]
        self.labelled = (self.root / f"{self.prefix}_gt").is_dir()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        name = self.names[i]
        patch = read_patch(self.root, name, self.prefix)
        dn = patch["dn"]
        data = (dn > 0).any(0)
        mask = patch["mask"] if patch["mask"] is not None else np.zeros(dn.shape[1:], np.uint8)
        info = self.parsed[name]
        sample = {
            "image": torch.from_numpy(np.where(data, self.sensor.reflectance(dn), 0.0).astype(np.float32)),
            "targets": {"cloud": torch.from_numpy(mask.astype(np.int64))},
            "valid": {"cloud": torch.from_numpy(data & self.labelled)},
            "meta": {"id": name, "scene": info["scene"], "row": info["row"], "col": info["col"],
                     "empty": not bool(data.any())},
        }
        return self.transform(sample) if self.transform else sample


def assemble_scene(patches: dict[tuple[int, int], np.ndarray], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Full-scene array from patches keyed by 1-based (row, col); cropped (centred) to ``shape``."""
    if not patches:
        raise ValueError("assemble_scene: no patches")
    size = next(iter(patches.values())).shape[-1]
    rows, cols = max(r for r, _ in patches), max(c for _, c in patches)
    first = next(iter(patches.values()))
    scene = np.zeros((rows * size, cols * size), dtype=first.dtype)
    for (r, c), p in patches.items():
        scene[(r - 1) * size:r * size, (c - 1) * size:c * size] = p
    if shape is None:
        return scene
    h, w = shape
    if h > scene.shape[0] or w > scene.shape[1]:
        raise ValueError(f"assemble_scene: patches cover {scene.shape}, smaller than the scene mask {shape}")
    top, left = (scene.shape[0] - h) // 2, (scene.shape[1] - w) // 2
    return scene[top:top + h, left:left + w]


def read_scene_gt(folder: str | Path, scene: str) -> np.ndarray:
    """The ``Entire_scene_gts`` mask of ``scene`` as uint8 0/1."""
    folder = Path(folder)
    matches = sorted(folder.glob(f"*{scene}*.TIF"))
    if not matches:
        raise DataError(f"{folder}: no full-scene mask for scene {scene}")
    raw, _ = read_band(matches[0], what="full-scene mask")
    return binary_mask(raw, matches[0])
