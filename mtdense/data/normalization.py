"""Input normalisation as data, so that it travels with the model.

A dataset that normalises its images exposes ``normalization = {"mean": [...], "std": [...]}``:
one value per input channel, in the *raw* units a user holds (kelvin for brightness
temperatures, 0–255 for 8-bit RGB), such that the model sees ``(raw - mean) / std``. A dataset
that passes raw values unchanged sets ``normalization = None``. The experiment records it in
the checkpoint spec (``mtdense.engine.builder.Experiment.spec``); ``mtdense.load(...).predict``
applies it to a raw array.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import torch

from mtdense.errors import ConfigError


def dataset_normalization(dataset: Any, channels: int) -> dict[str, list[float]] | None:
    """The dataset's ``normalization`` as plain float lists, checked against ``channels``; a
    dataset that does not declare it is taken as raw input, with a warning."""
    if not hasattr(dataset, "normalization"):
        warnings.warn(f"{type(dataset).__name__} does not declare `normalization`; checkpoints will assume its "
                      "images are raw values (set normalization = None to say so, or give its mean/std)", stacklevel=2)
    norm = getattr(dataset, "normalization", None)
    if norm is None:
        return None
    return checked_normalization(norm, channels, type(dataset).__name__)


def checked_normalization(norm: Mapping[str, Any], channels: int, owner: str) -> dict[str, list[float]]:
    """``norm`` as ``{"mean": [...], "std": [...]}`` of ``channels`` floats each, std > 0."""
    if not isinstance(norm, Mapping) or set(norm) != {"mean", "std"}:
        raise ConfigError(f"{owner}.normalization must be None or a mapping with exactly 'mean' and 'std'")
    out = {k: [float(v) for v in torch.as_tensor(norm[k], dtype=torch.float64).flatten().tolist()] for k in norm}
    for key, values in out.items():
        if len(values) != channels:
            raise ConfigError(f"{owner}.normalization: {key} has {len(values)} values for {channels} input channels")
    if min(out["std"]) <= 0:
        raise ConfigError(f"{owner}.normalization: every std must be > 0, got {out['std']}")
    return out


def _mean_std(image: torch.Tensor, norm: Mapping[str, list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``norm``'s mean and std as 1×C×1×1 tensors of ``image``'s dtype and device."""
    return tuple(torch.tensor(norm[k], dtype=image.dtype, device=image.device).view(1, -1, 1, 1) for k in ("mean", "std"))


def normalize(image: torch.Tensor, norm: Mapping[str, list[float]] | None) -> torch.Tensor:
    """``(image - mean) / std`` per channel of a B×C×H×W tensor; unchanged when ``norm`` is None."""
    if norm is None:
        return image
    mean, std = _mean_std(image, norm)
    return (image - mean) / std


def denormalize(image: torch.Tensor, norm: Mapping[str, list[float]] | None) -> torch.Tensor:
    """The raw values of a normalised B×C×H×W tensor, ``image * std + mean`` per channel (the
    inverse of ``normalize``); unchanged when ``norm`` is None."""
    if norm is None:
        return image
    mean, std = _mean_std(image, norm)
    return image * std + mean
