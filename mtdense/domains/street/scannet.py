"""ScanNet v2 reader: NYU-40 / 20-class semantics + metric depth from exported RGB-D frames.

ScanNet (Dai et al., CVPR 2017) is the second data set of Semantics-Depth-Symbiosis
(arXiv:2206.10562 v2). Layout after exporting a scan's ``.sens`` stream with ScanNet's
SensReader and unzipping ``<scene>_2d-label-filt.zip`` (ScanNet README and BenchmarkScripts)::

    <root>/<scene>/color/<frame>.jpg                  RGB, 1296×968 in ScanNet
    <root>/<scene>/depth/<frame>.png                  uint16 millimetres, 0 = invalid, 640×480
    <root>/<scene>/label-filt/<frame>.png             uint16 ScanNet label ids (filtered projections)
    <root>/<scene>/intrinsic/intrinsic_color.txt      4×4 camera matrix (fx, fy, cx, cy) of the colour camera
    <root>/<scene>/intrinsic/intrinsic_depth.txt      4×4 camera matrix of the depth camera
    <root>/scannetv2-labels.combined.tsv             label map: column ``id`` → ``nyu40id``
    <root>/scannetv2_<split>.txt                      scene names of a split (optional)

Semantics. Label ids map to NYU-40 through the tsv (``BenchmarkScripts/2d_helpers``: ``id`` →
``nyu40id``); ``classes: 40`` gives train ids 0-39 for NYU-40 ids 1-40, ``classes: 20`` the
20 classes of the ScanNet benchmark (NYU-40 ids 1 wall, 2 floor, 3 cabinet, 4 bed, 5 chair,
6 sofa, 7 table, 8 door, 9 window, 10 bookshelf, 11 picture, 12 counter, 14 desk, 16 curtain,
24 refrigerator, 28 shower curtain, 33 toilet, 34 sink, 36 bathtub, 39 other furniture) in
that order; NYU-40 id 0 (unannotated), ids missing from the tsv and other classes are ignored.

Geometry. Depth [m] = value / 1000; 0 and depths beyond ``max_depth`` are invalid. Colour and
depth cameras of ScanNet see (nearly) the same field of view at different resolutions, so
the usual practice — followed here — is to resample every map to one output ``size``
(default: the depth resolution): image bilinear (antialiased), labels and depth nearest at
pixel centres. The colour intrinsics scaled to the output size are in ``meta`` (fx, fy, cx,
cy). ``unlabelled: true`` reads frames without ``label-filt`` (semantic all invalid).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from mtdense.data.joint_transforms import nearest_indices
from mtdense.domains.street.cityscapes import IGNORE, IMAGENET_MEAN, IMAGENET_STD, _read_png
from mtdense.errors import ConfigError, DataError
from mtdense.registry import DATASETS

LABEL_MAP = "scannetv2-labels.combined.tsv"
BENCHMARK_NYU40_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39]
BENCHMARK_CLASS_NAMES = ["wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window",
                         "bookshelf", "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain",
                         "toilet", "sink", "bathtub", "otherfurniture"]


def read_label_map(path: Path, classes: int) -> np.ndarray:
    """Lookup table ScanNet label id (uint16) → train id (0..classes-1) or IGNORE."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        nyu40 = {int(r["id"]): int(r["nyu40id"]) for r in rows if r.get("nyu40id", "").strip()}
    except FileNotFoundError:
        raise DataError(f"{path}: missing ScanNet label map (download scannetv2-labels.combined.tsv into the root)") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: needs tab-separated columns 'id' and 'nyu40id' with integers ({exc!r})") from None
    to_train = np.full(41, IGNORE, np.int64)
    if classes == 40:
        to_train[1:] = np.arange(40)
    else:
        to_train[BENCHMARK_NYU40_IDS] = np.arange(20)
    table = np.full(65536, IGNORE, np.int64)
    for label_id, nyu in nyu40.items():
        if 0 <= label_id < 65536 and 0 <= nyu <= 40:
            table[label_id] = to_train[nyu]
    return table


def read_intrinsics(path: Path) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) from a 4×4 ScanNet intrinsic matrix file."""
    try:
        k = np.loadtxt(path, dtype=np.float64)
    except FileNotFoundError:
        raise DataError(f"{path}: missing camera intrinsics") from None
    except ValueError as exc:
        raise DataError(f"{path}: must hold a 4x4 matrix of numbers ({exc})") from None
    if k.shape != (4, 4) or not (k[0, 0] > 0 and k[1, 1] > 0):
        raise DataError(f"{path}: must hold a 4x4 camera matrix with positive fx, fy; got shape {k.shape}")
    return float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])


@DATASETS.register("scannet")
class ScanNet(Dataset):
    """ScanNet frames as semantic + depth samples (see module docstring).

    Args:
        root: folder of scene folders and the label-map tsv.
        split: reads scene names from ``<root>/scannetv2_<split>.txt``; ``None``: every scene.
        size: output ``(H, W)``; ``None``: the depth map's resolution.
        classes: 20 (benchmark) or 40 (NYU-40).
        max_depth: depths beyond this [m] are invalid.
        frame_step: keep every n-th frame of each scene (consecutive frames are near-duplicates).
        unlabelled: frames without ``label-filt`` (semantic all invalid).
        transform: optional callable ``sample -> sample`` applied last.
    """

    channel_names = ["red", "green", "blue"]

    normalization = None  # images are returned as read (RGB scaled to [0, 1]); no statistics are assumed

    @staticmethod
    def conformance_kwargs(workdir: Path) -> dict:
        """One tiny scene in the exact export layout (for ``mtdense.testing``)."""
        from mtdense.domains.street.scannet_tiny import write_tiny_scannet

        return {"root": str(write_tiny_scannet(workdir)), "size": [8, 12]}

    def __init__(self, root: str, split: str | None = None, size: Sequence[int] | None = None, classes: int = 20,
                 max_depth: float = 10.0, frame_step: int = 1, unlabelled: bool = False,
                 transform: Callable[[dict], dict] | None = None):
        if classes not in (20, 40):
            raise ConfigError(f"{classes!r} is not supported; use 20 (benchmark) or 40 (NYU-40)", key="classes")
        if size is not None and (len(size) != 2 or any(int(s) != s or s < 1 for s in size)):
            raise ConfigError(f"{size!r} must be two positive integers [H, W] or null", key="size")
        if not max_depth > 0 or int(frame_step) < 1:
            raise ConfigError("max_depth must be > 0 and frame_step >= 1", key="max_depth" if not max_depth > 0 else "frame_step")
        self.root, self.size, self.classes = Path(root), None if size is None else (int(size[0]), int(size[1])), classes
        self.max_depth, self.unlabelled, self.transform = float(max_depth), bool(unlabelled), transform
        self.target_keys = ["semantic", "depth"]
        self.class_names = BENCHMARK_CLASS_NAMES if classes == 20 else [f"nyu40_{i}" for i in range(1, 41)]
        self._label_table = None if unlabelled else read_label_map(self.root / LABEL_MAP, classes)
        self.items = self._find_items(split, int(frame_step))

    def _scenes(self, split: str | None) -> list[str]:
        if split is None:
            return sorted(p.name for p in self.root.iterdir() if (p / "color").is_dir())
        listing = self.root / f"scannetv2_{split}.txt"
        if not listing.is_file():
            raise DataError(f"{listing}: missing scene list of split {split!r}; add it or set split: null for every scene")
        return [line.strip() for line in listing.read_text().splitlines() if line.strip()]

    def _find_items(self, split: str | None, step: int) -> list[tuple[str, str]]:
        items = []
        for scene in self._scenes(split):
            frames = sorted((p.stem for p in (self.root / scene / "color").glob("*.jpg")),
                            key=lambda s: (len(s), s))  # SensReader names frames 0.jpg, 1.jpg, … 10.jpg
            items += [(scene, f) for f in frames[::step]]
        if not items:
            raise DataError(f"{self.root}: no <scene>/color/<frame>.jpg frames found (split {split!r})")
        needed = ("depth",) if self.unlabelled else ("depth", "label-filt")
        missing = [str(self.root / s / d / f"{f}.png") for s, f in items for d in needed
                   if not (self.root / s / d / f"{f}.png").is_file()]
        if missing:
            raise DataError(f"ScanNet files missing for {len(missing)} frame(s), e.g. {', '.join(missing[:3])}; "
                            f"every color/<frame>.jpg needs {' and '.join(f'{d}/<frame>.png' for d in needed)}")
        return items

    def __len__(self) -> int:
        return len(self.items)

    def sample_ids(self) -> list[str]:
        return [f"{scene}/{frame}" for scene, frame in self.items]

    def __getitem__(self, index: int) -> dict:
        scene, frame = self.items[index]
        folder = self.root / scene
        with Image.open(folder / "color" / f"{frame}.jpg") as img:
            rgb = img.convert("RGB")
        depth_mm = _read_png(folder / "depth" / f"{frame}.png", "uint16 depth map (mm)", ("I;16", "I;16B", "I"))
        out_h, out_w = self.size or depth_mm.shape
        depth = depth_mm.astype(np.float32) / 1000.0
        depth = depth[nearest_indices(depth.shape[0], out_h)][:, nearest_indices(depth.shape[1], out_w)]
        depth_valid = (depth > 0) & (depth <= self.max_depth)
        if self.unlabelled:
            semantic = np.full((out_h, out_w), IGNORE, np.int64)
        else:
            ids = _read_png(folder / "label-filt" / f"{frame}.png", "uint16 ScanNet label-id map", ("I;16", "I;16B", "I", "L"))
            ids = ids[nearest_indices(ids.shape[0], out_h)][:, nearest_indices(ids.shape[1], out_w)]
            semantic = self._label_table[ids.astype(np.int64)]
        fx, fy, cx, cy = read_intrinsics(folder / "intrinsic" / "intrinsic_color.txt")
        sx, sy = out_w / rgb.width, out_h / rgb.height
        image = np.asarray(rgb.resize((out_w, out_h), Image.BILINEAR), dtype=np.float32) / 255.0
        image = (image - IMAGENET_MEAN) / IMAGENET_STD
        semantic_valid = semantic != IGNORE
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "targets": {"semantic": torch.from_numpy(np.where(semantic_valid, semantic, 0)),
                        "depth": torch.from_numpy(np.where(depth_valid, depth, 0.0).astype(np.float32))},
            "valid": {"semantic": torch.from_numpy(semantic_valid), "depth": torch.from_numpy(depth_valid)},
            "meta": {"id": f"{scene}/{frame}", "fx": fx * sx, "fy": fy * sy, "cx": cx * sx, "cy": cy * sy},
        }
        return self.transform(sample) if self.transform is not None else sample
