"""Cityscapes reader: semantic labels + metric depth (or disparity) from the real file layout.

Layout (Cordts et al., CVPR 2016; mcordts/cityscapesScripts)::

    <root>/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png      8-bit RGB
    <root>/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png       8-bit label ids 0-33
    <root>/disparity/<split>/<city>/<stem>_disparity.png          16-bit, p = 0 invalid
    <root>/camera/<split>/<city>/<stem>_camera.json               baseline [m], fx [px]

Semantics: label ids map to the 19 train ids (cityscapesScripts ``labels.py``; every other id,
including the ignore-in-eval ones, -> ignore) or to the 7 categories flat, construction,
object, nature, sky, human, vehicle (the category of those 19 classes, as the official
category-level evaluation counts them; the MTAN 7-class benchmark uses the same groups).

Depth (cityscapesScripts README): disparity d = (p - 1) / 256 px for p > 0, depth
Z = baseline * fx / d in metres from the per-image camera JSON. Pixels with p = 0, d <= 0 or
Z > ``max_depth`` are invalid. ``crop_bottom`` marks the bottom fraction of rows invalid for
depth (the ego-vehicle bonnet and rectification border: use 0.2 for real Cityscapes, 0 for
mtdense's synthetic street scenes, which have no ego vehicle). Its semantic labels already
say "ego vehicle" (ignored), so semantics are unaffected.

Resizing (``size``): depth is computed at full resolution, then depth, labels and validity
are resampled with nearest neighbour (never interpolated across invalid pixels); the image
uses Pillow's bilinear filter (antialiased when shrinking).

Image normalisation: RGB scaled to [0, 1], then ImageNet mean (0.485, 0.456, 0.406) and
std (0.229, 0.224, 0.225) per channel; ``normalization`` states the same in 0–255 units (×255),
the raw values of the PNG, so a checkpoint applies it to an 8-bit image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from mtdense.data.joint_transforms import nearest_indices
from mtdense.registry import DATASETS
from mtdense.errors import ConfigError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IGNORE = 255

TRAIN_CLASS_NAMES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
]
# Cityscapes label id of each train id (cityscapesScripts labels.py).
TRAIN_ID_LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
CATEGORY_NAMES = ["flat", "construction", "object", "nature", "sky", "human", "vehicle"]
# Category index (catId - 1) of each train id.
TRAIN_ID_CATEGORY = [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 6, 6, 6, 6]


def _lookup_table(classes: int) -> np.ndarray:
    """256-entry table: Cityscapes label id -> train id (19) or category (7); rest -> 255."""
    table = np.full(256, IGNORE, dtype=np.uint8)
    for train_id, label_id in enumerate(TRAIN_ID_LABEL_IDS):
        table[label_id] = train_id if classes == 19 else TRAIN_ID_CATEGORY[train_id]
    return table


def _read_png(path: Path, what: str, modes: Sequence[str]) -> np.ndarray:
    """Read a PNG fully; name the file and the expected content on any problem."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in modes:
                raise ValueError(
                    f"{path}: {what} must be a PNG of mode {' or '.join(modes)}, got mode {img.mode!r}"
                )
            return np.array(img)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing {what}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise OSError(f"{path}: cannot read {what} ({exc}); re-download or re-extract this file") from exc


def _read_camera(path: Path) -> tuple[float, float]:
    """(baseline [m], fx [px]) from a Cityscapes camera JSON."""
    try:
        cam = json.loads(path.read_text())
        baseline, fx = float(cam["extrinsic"]["baseline"]), float(cam["intrinsic"]["fx"])
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing camera calibration JSON") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{path}: camera JSON must hold numbers extrinsic.baseline and intrinsic.fx ({exc!r})"
        ) from exc
    if not (baseline > 0 and fx > 0):
        raise ValueError(f"{path}: baseline ({baseline}) and fx ({fx}) must be positive")
    return baseline, fx


@DATASETS.register("cityscapes")
class Cityscapes(Dataset):
    """Cityscapes (or mtdense's synthetic street scenes) as semantic + depth samples.

    Args:
        root: folder holding ``leftImg8bit``, ``gtFine``, ``disparity`` and ``camera``.
        split: ``train``, ``val`` or ``test`` (any sub-folder name present).
        size: output ``(H, W)``; ``None`` keeps the file resolution.
        classes: 19 (train ids) or 7 (categories).
        target: ``"depth"`` (metres) or ``"disparity"`` (pixels at the output resolution).
            With ``size``, disparity values are multiplied by ``W_out / W_in``: resizing the
            image by s scales the focal length by s, and d = baseline * fx / Z, so the
            disparity of the same point scales by s too. Without the rescaling, depth
            recovered with the resized fx would be wrong by the factor s. The sample key is
            the target's name (``"depth"`` or ``"disparity"``); validity is the same for both.
        max_depth: depths beyond this [m] are invalid.
        crop_bottom: fraction of bottom rows invalid for depth (0.2 for real Cityscapes).
        transform: optional callable ``sample -> sample`` applied last (e.g. a joint
            geometric transform from ``mtdense.data.joint_transforms``).
        unlabelled: images without fine labels (``split: train_extra``, used as unlabelled data
            by ``mtdense.data.semisup``): ``gtFine`` is not read and the semantic target is all
            invalid; disparity and camera files are read where present (Cityscapes ships them
            for train_extra), else depth is all invalid for that image.
    """

    channel_names = ["red", "green", "blue"]
    normalization = {"mean": (IMAGENET_MEAN * 255).tolist(), "std": (IMAGENET_STD * 255).tolist()}  # of 0–255 RGB

    @staticmethod
    def conformance_kwargs(workdir: Path) -> dict:
        """Two tiny synthetic street scenes in the Cityscapes layout (for ``mtdense.testing``)."""
        from mtdense.domains.street.synth import synth_street

        synth_street(workdir, n_train=2, n_val=0, height=16, width=32)
        return {"root": str(workdir), "split": "train"}

    def __init__(
        self,
        root: str,
        split: str = "train",
        size: Sequence[int] | None = None,
        classes: int = 19,
        target: str = "depth",
        max_depth: float = 80.0,
        crop_bottom: float = 0.0,
        transform: Callable[[dict], dict] | None = None,
        unlabelled: bool = False,
    ):
        if classes not in (19, 7):
            raise ConfigError(f"{classes!r} is not supported; use 19 (train ids) or 7 (categories)", key="classes")
        if target not in ("depth", "disparity"):
            raise ConfigError(f"{target!r} is not supported; use 'depth' or 'disparity'", key="target")
        if size is not None and (len(size) != 2 or any(int(s) != s or s < 1 for s in size)):
            raise ConfigError(f"{size!r} must be two positive integers [H, W] or null", key="size")
        if not max_depth > 0:
            raise ConfigError(f"{max_depth!r} must be a positive number of metres", key="max_depth")
        if not 0 <= crop_bottom < 1:
            raise ConfigError(f"{crop_bottom!r} must be a fraction in [0, 1)", key="crop_bottom")
        self.root, self.split = Path(root), split
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.classes, self.target = classes, target
        self.max_depth, self.crop_bottom = float(max_depth), float(crop_bottom)
        self.transform, self.unlabelled = transform, bool(unlabelled)
        self.target_keys = ["semantic", target]
        self.class_names = TRAIN_CLASS_NAMES if classes == 19 else CATEGORY_NAMES
        self._label_table = _lookup_table(classes)
        self.items = self._find_items()

    def _find_items(self) -> list[tuple[str, str]]:
        image_dir = self.root / "leftImg8bit" / self.split
        if not image_dir.is_dir():
            have = sorted(p.name for p in (self.root / "leftImg8bit").glob("*") if p.is_dir())
            raise FileNotFoundError(
                f"{image_dir}: no such folder; expected the Cityscapes layout "
                f"<root>/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png (splits found: {have or 'none'})"
            )
        items = sorted(
            (p.parent.name, p.name[: -len("_leftImg8bit.png")])
            for p in image_dir.glob("*/*_leftImg8bit.png")
        )
        if not items:
            raise FileNotFoundError(f"{image_dir}: no <city>/<stem>_leftImg8bit.png images found")
        needed = slice(4, 4) if self.unlabelled else slice(1, 4)
        missing = [str(p) for city, stem in items for p in self._paths(city, stem)[needed] if not p.is_file()]
        if missing:
            more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
            raise FileNotFoundError(
                "Cityscapes files missing for some images: " + ", ".join(missing[:3]) + more +
                "; every image needs gtFine/..._gtFine_labelIds.png, disparity/..._disparity.png "
                "and camera/..._camera.json with the same <split>/<city>/<stem>"
            )
        return items

    def _paths(self, city: str, stem: str) -> tuple[Path, Path, Path, Path]:
        sub = Path(self.split) / city
        return (
            self.root / "leftImg8bit" / sub / f"{stem}_leftImg8bit.png",
            self.root / "gtFine" / sub / f"{stem}_gtFine_labelIds.png",
            self.root / "disparity" / sub / f"{stem}_disparity.png",
            self.root / "camera" / sub / f"{stem}_camera.json",
        )

    def __len__(self) -> int:
        return len(self.items)

    def sample_ids(self) -> list[str]:
        """The file stems (``aachen_000000_000019``): ids for label splits."""
        return [stem for _, stem in self.items]

    def _read_labels_and_disparity(self, label_path: Path, disparity_path: Path, camera_path: Path,
                                   shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float, float]:
        """(label ids, raw 16-bit disparity, baseline, fx); for unlabelled images the labels are all
        ignore, and a missing disparity/camera pair gives an all-invalid disparity."""
        if self.unlabelled:
            label_ids = np.zeros(shape, np.uint8)  # label id 0 ("unlabeled") maps to ignore
        else:
            label_ids = _read_png(label_path, "8-bit label-id map (_gtFine_labelIds.png)", ("L", "P"))
        if self.unlabelled and not (disparity_path.is_file() and camera_path.is_file()):
            return label_ids, np.zeros(shape, np.uint16), 1.0, 1.0
        raw = _read_png(disparity_path, "16-bit disparity map", ("I;16", "I;16B", "I"))
        baseline, fx = _read_camera(camera_path)
        return label_ids, raw, baseline, fx

    def __getitem__(self, index: int) -> dict:
        city, stem = self.items[index]
        image_path, label_path, disparity_path, camera_path = self._paths(city, stem)
        rgb = _read_png(image_path, "8-bit RGB image", ("RGB",))
        height, width = rgb.shape[:2]
        label_ids, raw, baseline, fx = self._read_labels_and_disparity(label_path, disparity_path, camera_path,
                                                                      (height, width))
        for path, arr in ((label_path, label_ids), (disparity_path, raw)):
            if arr.shape != (height, width):
                raise ValueError(f"{path}: size {arr.shape} differs from its image {image_path} ({height}, {width})")

        semantic = self._label_table[label_ids]
        disparity = np.where(raw > 0, (raw.astype(np.float64) - 1.0) / 256.0, 0.0)
        depth_valid = disparity > 0
        depth = np.where(depth_valid, baseline * fx / np.where(depth_valid, disparity, 1.0), 0.0)
        depth_valid &= depth <= self.max_depth
        depth_valid[height - int(round(self.crop_bottom * height)):] = False
        value = depth if self.target == "depth" else disparity

        if self.size is not None and self.size != (height, width):
            out_h, out_w = self.size
            rows, cols = nearest_indices(height, out_h), nearest_indices(width, out_w)
            semantic, value, depth_valid = (a[rows][:, cols] for a in (semantic, value, depth_valid))
            if self.target == "disparity":
                value = value * (out_w / width)
            rgb = np.array(Image.fromarray(rgb).resize((out_w, out_h), Image.BILINEAR))

        image = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        semantic_valid = semantic != IGNORE
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "targets": {
                "semantic": torch.from_numpy(np.where(semantic_valid, semantic, 0).astype(np.int64)),
                self.target: torch.from_numpy(np.where(depth_valid, value, 0.0).astype(np.float32)),
            },
            "valid": {
                "semantic": torch.from_numpy(semantic_valid),
                self.target: torch.from_numpy(np.ascontiguousarray(depth_valid)),
            },
            "meta": {"id": stem, "city": city},
        }
        return self.transform(sample) if self.transform is not None else sample
