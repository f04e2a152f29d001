"""Per-sample transforms from YAML: a dataset's ``transform: [{type: ...}, ...]`` becomes one callable.

Transforms are registered in the ``transform`` registry (e.g. ``random_scale_crop_flip``) and
called as ``t(sample) -> sample`` on the contract sample (image, targets, valid, meta), in order.
A dataset still accepts a Python callable directly (programmatic use).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from mtdense.registry import TRANSFORMS


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Callable[[dict], dict]]):
        self.transforms = list(transforms)

    def __call__(self, sample: dict) -> dict:
        for t in self.transforms:
            sample = t(sample)
        return sample


def build_transform(cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, path: str) -> Callable | None:
    """One callable from a transform config (a mapping with ``type``, or a list of them)."""
    if cfg is None or callable(cfg):
        return cfg
    if isinstance(cfg, Mapping):
        return TRANSFORMS.build(cfg, path)
    return Compose([TRANSFORMS.build(c, f"{path}.{i}") for i, c in enumerate(cfg)])
