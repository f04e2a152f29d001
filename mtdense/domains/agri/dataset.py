"""``agri_fields``: UAV field images with per-task masks, in the agri folder layout.

Layout (``synth.py`` writes it; bring your own fields the same way)::

    <root>/<split>/images/<stem>.png|.tif     H×W×C (PNG: RGB / grey; TIFF or GeoTIFF: any C, e.g. R, G, B, NIR)
    <root>/<split>/plants/<stem>.png|.tif     0 background, 1 crop plant, 255 ignore
    <root>/<split>/rows/<stem>.png|.tif       0 background, 1 plantation-row line, 255 ignore
    <root>/<split>/centres/<stem>.tif         float heat-map in [0, 1]; NaN = ignore (optional)

A target folder that is absent is simply not provided (``target_keys``); a target folder that
lacks the mask of an image is an error naming the file. Images are scaled to [0, 1] by their
integer type's maximum (8- or 16-bit; float images are taken as they are), recorded as
``normalization`` (mean 0, std = that maximum) so a saved model applies it to raw arrays; ``channels`` selects
bands by index (e.g. ``[0, 1, 2]`` for RGB out of RGB+NIR). Masks are never interpolated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tifffile
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from mtdense.errors import ConfigError, DataError
from mtdense.registry import DATASETS

TARGETS = ("plants", "rows", "centres")
IGNORE = 255
SUFFIXES = (".png", ".tif", ".tiff")
BAND_NAMES = {3: ["red", "green", "blue"], 4: ["red", "green", "blue", "nir"]}


def read_raster(path: Path, what: str) -> np.ndarray:
    """H×W or H×W×C array of a PNG (Pillow) or TIFF/GeoTIFF (tifffile); errors name the file."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return np.asarray(tifffile.imread(path))
        with Image.open(path) as img:
            img.load()
            return np.asarray(img)
    except FileNotFoundError:
        raise DataError(f"{path}: missing {what}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read {what} ({exc}); re-write or remove this file") from None


def _find(folder: Path, stem: str, what: str) -> Path:
    for suffix in SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise DataError(f"{folder / stem}.png: missing {what} (expected .png or .tif)")


@DATASETS.register("agri_fields")
class AgriFields(Dataset):
    """Samples {image C×H×W, targets {plants, rows[, centres]}, valid, meta {stem, split}}."""

    @staticmethod
    def conformance_kwargs(workdir: Path) -> dict:
        """Two tiny synthetic fields with NIR (for ``mtdense.testing``)."""
        from mtdense.domains.agri.synth import synth_agri

        synth_agri(workdir, {"train": 2}, height=16, width=24, nir=True)
        return {"root": str(workdir), "split": "train"}

    def __init__(self, root: str, split: str = "train", channels: Sequence[int] | None = None,
                 targets: Sequence[str] | None = None, transform: Callable[[dict], dict] | None = None):
        self.folder = Path(root) / split
        images = self.folder / "images"
        if not images.is_dir():
            raise DataError(f"{images}: no such folder; expected <root>/<split>/images (run `mtdense data synth-agri`?)")
        self.stems = sorted(p.stem for p in images.iterdir() if p.suffix.lower() in SUFFIXES)
        if not self.stems:
            raise DataError(f"{images}: holds no .png or .tif images")
        present = [t for t in TARGETS if (self.folder / t).is_dir()]
        unknown = [t for t in (targets or []) if t not in TARGETS]
        if unknown:
            raise ConfigError(f"{unknown[0]!r} is not a target of this layout; choose from {', '.join(TARGETS)}", key="targets")
        missing = [t for t in (targets or []) if t not in present]
        if missing:
            raise DataError(f"{self.folder / missing[0]}: no such folder, but targets asks for {missing[0]!r}")
        self.target_keys = list(targets) if targets else present
        first = self._image(self.stems[0])
        self.channels = list(channels) if channels is not None else list(range(first.shape[-1]))
        if not self.channels or max(self.channels) >= first.shape[-1] or min(self.channels) < 0:
            raise ConfigError(f"{list(channels or [])} selects bands outside 0..{first.shape[-1] - 1} of "
                              f"{images / self.stems[0]}", key="channels")
        names = BAND_NAMES.get(first.shape[-1], [f"band{i}" for i in range(first.shape[-1])])
        self.channel_names = [names[i] for i in self.channels]
        scale = float(np.iinfo(first.dtype).max) if np.issubdtype(first.dtype, np.integer) else None
        self.normalization = None if scale is None else {"mean": [0.0] * len(self.channels),
                                                         "std": [scale] * len(self.channels)}
        self.transform = transform

    def __len__(self) -> int:
        return len(self.stems)

    def _image(self, stem: str) -> np.ndarray:
        path = _find(self.folder / "images", stem, "image")
        img = read_raster(path, "image")
        img = img[..., None] if img.ndim == 2 else img
        if img.ndim != 3:
            raise DataError(f"{path}: image must be H×W or H×W×C, got shape {img.shape}")
        return img

    def __getitem__(self, i: int) -> dict:
        stem = self.stems[i]
        raw = self._image(stem)
        scale = float(np.iinfo(raw.dtype).max) if np.issubdtype(raw.dtype, np.integer) else 1.0
        image = torch.from_numpy((raw[..., self.channels].astype(np.float32) / scale).transpose(2, 0, 1).copy())
        targets, valid = {}, {}
        for key in self.target_keys:
            path = _find(self.folder / key, stem, f"{key} mask of {stem}")
            mask = read_raster(path, f"{key} mask")
            if mask.shape != raw.shape[:2]:
                raise DataError(f"{path}: {key} mask is {mask.shape}, image is {raw.shape[:2]}; masks must match the image")
            if key == "centres":
                valid[key] = torch.from_numpy(np.isfinite(mask))
                targets[key] = torch.from_numpy(np.nan_to_num(mask.astype(np.float32)))
            else:
                bad = (mask != IGNORE) & (mask > 1)
                if bad.any():
                    raise DataError(f"{path}: {key} mask holds values {sorted(np.unique(mask[bad]))[:5]}; "
                                    "use 0 (background), 1 (foreground) or 255 (ignore)")
                valid[key] = torch.from_numpy(mask != IGNORE)
                targets[key] = torch.from_numpy(np.where(mask == IGNORE, 0, mask).astype(np.int64))
        sample = {"image": image, "targets": targets, "valid": valid, "meta": {"stem": stem, "split": self.folder.name}}
        return self.transform(sample) if self.transform else sample
