"""The real Middlebury 2014 "Motorcycle" stereo pair shipped with scikit-image, written in the
Cityscapes layout: a real-image, real-disparity smoke test of the street pipeline.

Source: ``skimage.data.stereo_motorcycle()`` (Scharstein et al., GCPR 2014; down-sampled ×4
by scikit-image, bundled with the package: nothing is downloaded). Calibration of the
down-sampled images (scikit-image docstring): f = 994.978 px, principal point (311.193,
254.877) px, disparity offset doffs = 31.086 px, baseline 193.001 mm. Middlebury depth is
Z = B·f / (d + doffs), so the Cityscapes disparity PNG stores d + doffs
(p = round(256·(d + doffs)) + 1; NaN → 0 = invalid) and the Cityscapes reader's
Z = baseline·fx / disparity is the true metric depth (2.1–5.0 m here).

Semantics: the pair has no semantic ground truth. The label-id maps written here are a
DEPTH-DERIVED STAND-IN, not real labels: nearer than ``near`` metres → car (26, the
motorcycle in front), farther → building (11), no disparity → unlabeled (0). They exist only
so the labelled path runs on a real image; never report segmentation scores on them.

Written samples (city ``middlebury``): ``train`` = the four overlapping quadrant crops of
the left image, ``val`` = the centre crop, ``train_extra`` = the full left image (with its
disparity) and the right image (no disparity: the reader's unlabelled mode marks its depth
invalid), i.e. unlabelled images in the form Cityscapes ships them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

FOCAL, CX, CY, DOFFS, BASELINE = 994.978, 311.193, 254.877, 31.086, 0.193001
CITY = "middlebury"


def _write(root: Path, split: str, stem: str, rgb: np.ndarray, disparity: np.ndarray | None,
           label_ids: np.ndarray | None, u0: float, v0: float) -> None:
    def folder(kind: str) -> Path:
        path = root / kind / split / CITY
        path.mkdir(parents=True, exist_ok=True)
        return path

    Image.fromarray(rgb).save(folder("leftImg8bit") / f"{stem}_leftImg8bit.png")
    if label_ids is not None:
        Image.fromarray(label_ids).save(folder("gtFine") / f"{stem}_gtFine_labelIds.png")
    if disparity is not None:
        shifted = disparity + DOFFS
        raw = np.where(np.isfinite(shifted), np.round(np.nan_to_num(shifted) * 256) + 1, 0)
        Image.fromarray(np.clip(raw, 0, 65535).astype(np.uint16)).save(folder("disparity") / f"{stem}_disparity.png")
        camera = {"extrinsic": {"baseline": BASELINE, "pitch": 0.0, "roll": 0.0, "x": 0.0, "y": 0.0, "yaw": 0.0,
                                "z": 0.0},
                  "intrinsic": {"fx": FOCAL, "fy": FOCAL, "u0": u0, "v0": v0}}
        (folder("camera") / f"{stem}_camera.json").write_text(json.dumps(camera, indent=1))


def write_middlebury_cityscapes(root: str | Path, near: float = 3.0) -> dict:
    """Write the Motorcycle pair under ``root`` in the Cityscapes layout (see module docstring)."""
    from skimage import data

    root = Path(root)
    left, right, disparity = data.stereo_motorcycle()
    disparity = np.where(np.isfinite(disparity), disparity, np.nan).astype(np.float64)
    depth = BASELINE * FOCAL / (disparity + DOFFS)
    label_ids = np.where(np.isnan(depth), 0, np.where(depth < near, 26, 11)).astype(np.uint8)
    h, w = disparity.shape
    ch, cw = (2 * h) // 3, (2 * w) // 3
    crops = {"train": [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw)], "val": [((h - ch) // 2, (w - cw) // 2)]}
    for split, corners in crops.items():
        for i, (top, lft) in enumerate(corners):
            window = (slice(top, top + ch), slice(lft, lft + cw))
            _write(root, split, f"{CITY}_{i:06d}_000019", np.ascontiguousarray(left[window]), disparity[window],
                   label_ids[window], CX - lft, CY - top)
    _write(root, "train_extra", f"{CITY}_000000_000000", left, disparity, None, CX, CY)
    _write(root, "train_extra", f"{CITY}_000001_000000", right, None, None, CX, CY)
    (root / "REAL_MIDDLEBURY.txt").write_text(
        "Real Middlebury 2014 Motorcycle pair (skimage.data.stereo_motorcycle) in the Cityscapes layout; "
        "disparity stores d + doffs; label ids are a depth-derived stand-in, not real semantics.\n")
    valid = np.isfinite(depth)
    return {"root": str(root), "train": 4, "val": 1, "train_extra": 2, "crop": [ch, cw],
            "depth_m": [float(depth[valid].min()), float(depth[valid].max())], "valid_fraction": float(valid.mean())}
