"""Synthetic shapes: a tiny in-memory two-task dataset for tests, smoke runs and plugin authors.

Each sample is a C-channel image of a few discs and squares on a noisy background. Targets:
``semantic`` (0 background, 1 disc, 2 square) and ``height`` (a continuous map: each shape is a
dome/pyramid whose peak is encoded, with noise, in the brightness of channel 0). A border of
``invalid_border`` pixels is marked invalid in both targets so validity masks are exercised.
Sample i is generated from (seed, i) alone, so any worker produces it identically; ``transform``
(a callable, or transforms configured in YAML) is applied last. Synthetic.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from mtdense.registry import DATASETS


@DATASETS.register("synthetic_shapes")
class SyntheticShapes(Dataset):
    def __init__(self, length: int = 32, size: tuple[int, int] = (32, 48), channels: int = 3, seed: int = 0,
                 split: str = "train", invalid_border: int = 1, max_shapes: int = 4,
                 transform: Callable[[dict], dict] | None = None):
        self.length, self.size, self.channels = int(length), tuple(size), int(channels)
        self.seed = seed + {"train": 0, "val": 10_000, "test": 20_000}.get(split, 30_000)
        self.invalid_border, self.max_shapes = invalid_border, max_shapes
        self.channel_names = [f"band{i}" for i in range(self.channels)]
        self.target_keys = ["semantic", "height"]
        self.transform = transform

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng((self.seed, i))
        h, w = self.size
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        semantic = np.zeros((h, w), np.int64)
        height = np.zeros((h, w), np.float32)
        for _ in range(rng.integers(1, self.max_shapes + 1)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            r = rng.uniform(3, min(h, w) / 3)
            peak = rng.uniform(0.5, 3.0)
            if rng.random() < 0.5:
                d = np.hypot(yy - cy, xx - cx) / r
                cls = 1
            else:
                d = np.maximum(abs(yy - cy), abs(xx - cx)) / r
                cls = 2
            inside = d < 1
            semantic[inside] = cls
            height[inside] = np.maximum(height[inside], peak * (1 - d[inside]))
        image = rng.normal(0, 0.3, (self.channels, h, w)).astype(np.float32)
        image[0] += height
        if self.channels > 1:
            image[1] += (semantic == 1) * 1.0 - (semantic == 2) * 1.0
        valid = np.ones((h, w), bool)
        b = self.invalid_border
        if b:
            valid[:b], valid[-b:], valid[:, :b], valid[:, -b:] = False, False, False, False
        v = torch.from_numpy(valid)
        sample = {"image": torch.from_numpy(image),
                  "targets": {"semantic": torch.from_numpy(semantic), "height": torch.from_numpy(height)},
                  "valid": {"semantic": v, "height": v.clone()},
                  "meta": {"id": f"shapes_{i:05d}"}}
        return self.transform(sample) if self.transform is not None else sample
