"""Joint geometric augmentation of a contract sample (image + every target + every valid mask).

The standard Cityscapes recipe (random scale, random crop, horizontal flip), with two rules
dense multi-task data needs:

* targets and valid masks are resampled with nearest neighbour at pixel centres (never
  interpolated across invalid pixels or between class ids); the image is bilinear
  (antialiased when shrinking);
* zooming by s acts like a focal length s * fx with the intrinsics held fixed, so a depth
  target becomes depth / s and a disparity target (pixels) disparity * s — the rule
  AffineMix and DepthMix rely on (seeds.md 4.2).

Written with torch rather than albumentations because the depth values must be divided by
the scale that was actually drawn; photometric albumentations transforms can still be
applied to the image alone. Randomness comes from torch's generator, which DataLoader seeds
per worker.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mtdense.errors import ConfigError
from mtdense.registry import TRANSFORMS


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel for nearest-neighbour resampling (pixel centres)."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


@TRANSFORMS.register("random_scale_crop_flip")
class RandomScaleCropFlip:
    """Scale by s ~ U(scale), crop/pad to ``size``, flip left-right with probability ``flip``.

    Padding (when the scaled sample is smaller than ``size``) fills the image with 0 (the
    mean after normalisation) and marks targets invalid.
    """

    def __init__(self, size: Sequence[int], scale: Sequence[float] = (0.5, 2.0), flip: float = 0.5,
                 depth_keys: Sequence[str] = ("depth",), disparity_keys: Sequence[str] = ("disparity",),
                 generator: torch.Generator | None = None):
        if len(size) != 2 or min(size) < 1:
            raise ConfigError(f"{list(size)!r} must be two positive integers (H, W)", key="size")
        if not 0 < scale[0] <= scale[1]:
            raise ConfigError(f"{list(scale)!r} must be (low, high) with 0 < low <= high", key="scale")
        self.size, self.scale, self.flip = (int(size[0]), int(size[1])), (float(scale[0]), float(scale[1])), flip
        self.depth_keys, self.disparity_keys = set(depth_keys), set(disparity_keys)
        self.generator = generator

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * torch.rand((), generator=self.generator).item()

    def __call__(self, sample: dict) -> dict:
        image = sample["image"]
        height, width = image.shape[-2:]
        s = self._uniform(*self.scale)
        new_h, new_w = max(1, round(height * s)), max(1, round(width * s))
        image = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", align_corners=False,
                              antialias=s < 1)[0]
        rows = torch.from_numpy(nearest_indices(height, new_h))
        cols = torch.from_numpy(nearest_indices(width, new_w))
        targets = {k: v[rows][:, cols] for k, v in sample["targets"].items()}
        valid = {k: v[rows][:, cols] for k, v in sample["valid"].items()}
        for key in targets:
            if key in self.depth_keys:
                targets[key] = targets[key] / s
            elif key in self.disparity_keys:
                targets[key] = targets[key] * s

        out_h, out_w = self.size
        top = int(self._uniform(0, max(new_h - out_h, 0) + 1 - 1e-9))
        left = int(self._uniform(0, max(new_w - out_w, 0) + 1 - 1e-9))
        flip = self._uniform(0, 1) < self.flip

        def crop(x: torch.Tensor) -> torch.Tensor:
            x = x[..., top : top + out_h, left : left + out_w]
            pad_h, pad_w = out_h - x.shape[-2], out_w - x.shape[-1]
            if pad_h or pad_w:
                padded = x.new_zeros(x.shape[:-2] + (out_h, out_w))
                padded[..., : x.shape[-2], : x.shape[-1]] = x
                x = padded
            return x.flip(-1) if flip else x

        return {
            "image": crop(image),
            "targets": {k: crop(v) for k, v in targets.items()},
            "valid": {k: crop(v) for k, v in valid.items()},
            "meta": {**sample["meta"], "scale": s, "flipped": int(flip)},
        }
